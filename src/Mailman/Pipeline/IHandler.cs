namespace Mailman.Pipeline;

/// <summary>One step of a list's pipeline: a small, named, single-purpose transformation or check.</summary>
public interface IHandler
{
    /// <summary>The name used in configuration (<c>Mailman:Pipeline:Handlers</c>).</summary>
    string Name { get; }

    /// <summary>One line saying what the handler does.</summary>
    string Description { get; }

    /// <exception cref="Exception">Any exception shunts the post with the error beside it.</exception>
    HandlerResult Process(PostContext post);
}
