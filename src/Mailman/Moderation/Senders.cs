// Which addresses a post's membership is judged by. The authors in From: (RFC 5322 §3.6.2), every
// one of them: a post is a member's only when all its authors are members, so writing a member's
// address beside your own does not get you in. Sender: and the envelope sender count only when
// From: names nobody; Reply-To: never (it says where answers go, not who wrote the post). At most
// Limit authors are looked up: a From: of 100,000 addresses costs no more than one of ten.
using MimeKit;

namespace Mailman.Moderation;

/// <summary>The post's authors as far as moderation is concerned.</summary>
public sealed class Senders
{
    /// <summary>Authors looked up at most; a post with more is not a member's post.</summary>
    public const int Limit = 10;

    private Senders(IReadOnlyList<string> addresses, int total, string source)
    {
        Addresses = addresses;
        Total = total;
        Source = source;
    }

    /// <summary>The first <see cref="Limit"/> authors (lower-cased, as the store keys them).</summary>
    public IReadOnlyList<string> Addresses { get; }

    /// <summary>How many authors the post names (may be far more than <see cref="Addresses"/>).</summary>
    public int Total { get; }

    /// <summary>Where they came from: "From", "Sender", "envelope" or "" (nobody).</summary>
    public string Source { get; }

    public bool TooMany => Total > Limit;

    /// <summary>The first author, or "" for a post from nobody.</summary>
    public string First => Addresses.Count > 0 ? Addresses[0] : "";

    /// <summary>For logs and notices: at most three addresses and a count, never longer than 200 characters.</summary>
    public string Summary
    {
        get
        {
            if (Total == 0)
            {
                return "(no sender)";
            }

            var shown = string.Join(", ", Addresses.Take(3));
            var text = Total > 3 ? $"{shown} (+{Total - 3} more)" : shown;
            return text.Length <= 200 ? text : text[..197] + "...";
        }
    }

    /// <summary>The authors of <paramref name="message"/>; <paramref name="envelopeSender"/> is the MTA's, if any.</summary>
    public static Senders Of(MimeMessage message, string? envelopeSender)
    {
        var from = new List<string>(Limit);
        var total = 0;
        foreach (var mailbox in message.From.Mailboxes)
        {
            if (string.IsNullOrWhiteSpace(mailbox.Address))
            {
                continue;
            }

            if (total++ < Limit)
            {
                from.Add(Key(mailbox.Address));
            }
        }

        if (total > 0)
        {
            return new Senders(from, total, "From");
        }

        if (message.Sender is { Address.Length: > 0 } sender)
        {
            return new Senders([Key(sender.Address)], 1, "Sender");
        }

        var envelope = (envelopeSender ?? "").Trim().Trim('<', '>').Trim();
        return envelope.Length > 0 ? new Senders([Key(envelope)], 1, "envelope") : new Senders([], 0, "");
    }

    // The store compares lower-cased addresses; an absurdly long one is cut (it matches no member).
    private static string Key(string address)
    {
        var a = address.Trim().ToLowerInvariant();
        return a.Length <= 320 ? a : a[..320];
    }
}
