namespace Mailman.Pipeline;

public enum HandlerAction
{
    /// <summary>Go on with the next handler.</summary>
    Continue,

    /// <summary>Drop the post on purpose (loop, policy); the runner logs it.</summary>
    Discard,

    /// <summary>Keep the post for a moderator (hold queue).</summary>
    Hold,

    /// <summary>Refuse the post; the runner notifies the poster.</summary>
    Reject,
}

/// <summary>A handler's decision. Handlers decide; runners move entries.</summary>
public readonly record struct HandlerResult(HandlerAction Action, string? Reason = null)
{
    public static readonly HandlerResult Continue = new(HandlerAction.Continue);

    public static HandlerResult Discard(string reason) => new(HandlerAction.Discard, reason);

    public static HandlerResult Hold(string reason) => new(HandlerAction.Hold, reason);

    public static HandlerResult Reject(string reason) => new(HandlerAction.Reject, reason);
}
