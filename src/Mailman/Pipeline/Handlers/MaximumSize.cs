// Holds a post larger than the list's maximum message size.
namespace Mailman.Pipeline.Handlers;

public sealed class MaximumSize : IHandler
{
    public string Name => "maximum-size";

    public string Description => "hold posts larger than the list's max_message_size_kb";

    public HandlerResult Process(PostContext post)
    {
        var limit = (long)post.List.MaxMessageSizeKb * 1024;
        return limit > 0 && post.RawSize > limit
            ? HandlerResult.Hold($"message size {post.RawSize} bytes exceeds the list's limit of {post.List.MaxMessageSizeKb} KiB")
            : HandlerResult.Continue;
    }
}
