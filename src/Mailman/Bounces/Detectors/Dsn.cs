// RFC 3464 delivery status notifications: the per-recipient groups of a message/delivery-status
// part (RFC 6533's message/global-delivery-status too), read leniently.
using MimeKit;

namespace Mailman.Bounces.Detectors;

public sealed class Dsn : IBounceDetector
{
    public string Name => "DSN";

    public string Description => "RFC 3464 delivery status notifications (failed, delayed, delivered per recipient)";

    public BounceAnalysis? Detect(BounceContext message)
    {
        var failed = new AddressCollector();
        var delayed = new AddressCollector();
        var succeeded = 0;
        foreach (var part in StatusParts(message))
        {
            var fields = ReportFields.Parse(BounceContext.ReadText(part, ReportFields.MaxReportBytes));
            foreach (var recipient in Recipients(fields))
            {
                switch (recipient.Classify())
                {
                    case Outcome.Failed:
                        failed.Add(recipient.Address(), recipient.StatusCode(), recipient.Diagnostic);
                        break;
                    case Outcome.Delayed:
                        delayed.Add(recipient.Address(), recipient.StatusCode(), recipient.Diagnostic);
                        break;
                    case Outcome.Succeeded:
                        succeeded++;
                        break;
                }
            }
        }

        // Failed recipients are the bounce even when others were only delayed (Mailman does the same).
        return failed.Result(BounceKind.Permanent, Name)
            ?? delayed.Result(BounceKind.Temporary, Name)
            ?? (succeeded > 0 ? new BounceAnalysis(BounceKind.NotABounce, [], Name) : null);
    }

    /// <summary>The report's status parts: those of the message itself (never of an attached
    /// original: a bounce of a bounce names the outer failure), or of a DSN that a relay wrapped
    /// whole as the first part of a multipart/mixed (to add a disclaimer).</summary>
    private static List<MimePart> StatusParts(BounceContext message)
    {
        var parts = message.Parts;
        var found = new List<MimePart>();
        foreach (var (entity, depth) in parts)
        {
            if (depth == 0 && IsStatus(entity))
            {
                found.Add((MimePart)entity);
            }
        }

        if (found.Count == 0 && message.Message.Body is Multipart { Count: > 0 } mixed
            && mixed.ContentType.IsMimeType("multipart", "mixed") && mixed[0] is MessagePart wrapped)
        {
            var start = 0;
            while (start < parts.Count && !ReferenceEquals(parts[start].Entity, wrapped))
            {
                start++;
            }

            for (var i = start + 1; i < parts.Count && parts[i].Depth >= 1; i++)
            {
                if (parts[i].Depth == 1 && IsStatus(parts[i].Entity))
                {
                    found.Add((MimePart)parts[i].Entity);
                }
            }
        }

        return found;
    }

    private static bool IsStatus(MimeEntity entity)
        => entity is MimePart && entity.ContentType.MediaType.Equals("message", StringComparison.OrdinalIgnoreCase)
            && (entity.ContentType.MediaSubtype.Equals("delivery-status", StringComparison.OrdinalIgnoreCase)
                || entity.ContentType.MediaSubtype.Equals("global-delivery-status", StringComparison.OrdinalIgnoreCase));

    /// <summary>The per-recipient groups. Lenient: a group also ends where a second
    /// Final-Recipient (or an Original-Recipient after a recipient) starts without a blank line.</summary>
    internal static List<RecipientGroup> Recipients(List<ReportField> fields)
    {
        var groups = new List<RecipientGroup>();
        var current = new RecipientGroup();
        foreach (var field in fields)
        {
            if (field.IsBlank)
            {
                Next();
            }
            else if (field.Is("Original-Recipient"))
            {
                if (current.Original is not null || current.Final is not null)
                {
                    Next();
                }

                current.Original = field.Value;
            }
            else if (field.Is("Final-Recipient"))
            {
                if (current.Final is not null)
                {
                    Next();
                }

                current.Final = field.Value;
            }
            else if (field.Is("Action"))
            {
                current.Action ??= field.Value;
            }
            else if (field.Is("Status"))
            {
                current.Status ??= field.Value;
            }
            else if (field.Is("Diagnostic-Code"))
            {
                current.Diagnostic ??= field.Value;
            }
        }

        Next();
        return groups;

        void Next()
        {
            if (current.Original is not null || current.Final is not null)
            {
                groups.Add(current);
            }

            current = new RecipientGroup();
        }
    }

    internal enum Outcome
    {
        Unknown,
        Failed,
        Delayed,
        Succeeded,
    }

    /// <summary>One recipient's fields.</summary>
    internal sealed class RecipientGroup
    {
        public string? Original { get; set; }

        public string? Final { get; set; }

        public string? Action { get; set; }

        public string? Status { get; set; }

        public string? Diagnostic { get; set; }

        /// <summary>Status, else a code in the diagnostic text ("550 5.1.1 ...").</summary>
        public string? StatusCode() => AddressText.FindStatus(Status) ?? AddressText.FindStatus(Diagnostic);

        /// <summary>Action decides (comments after it ignored; opensmtpd writes "error"); without a
        /// usable Action, the status class: 5.x.x failed, 4.x.x delayed. "failed" with a 4.x.x
        /// status stays failed: RFC 3464 2.3.3 makes failed final (no further attempts), and a
        /// 4.4.7 "gave up after retrying" is exactly that (corpus dsn_02).</summary>
        public Outcome Classify()
        {
            var action = (Action ?? "").TrimStart();
            if (Starts(action, "fail") || Starts(action, "error") || Starts(action, "bounce"))
            {
                return Outcome.Failed;
            }

            if (Starts(action, "delay"))
            {
                return Outcome.Delayed;
            }

            if (Starts(action, "deliver") || Starts(action, "relay") || Starts(action, "expand"))
            {
                return Outcome.Succeeded;
            }

            return StatusCode() switch
            {
                ['5', ..] => Outcome.Failed,
                ['4', ..] => Outcome.Delayed,
                ['2', ..] => Outcome.Succeeded,
                _ => Outcome.Unknown,
            };
        }

        /// <summary>Original-Recipient when it is an RFC 822 address (the address we sent to),
        /// else Final-Recipient.</summary>
        public string? Address() => Pick(Original) ?? Pick(Final);

        private static bool Starts(string s, string prefix) => s.StartsWith(prefix, StringComparison.OrdinalIgnoreCase);

        /// <summary><c>rfc822; addr</c>, <c>RFC822;&lt;addr&gt;</c>, <c>utf-8; addr</c>, or a bare
        /// <c>&lt;addr&gt;</c>; other address types (x400, unknown) are not ours.</summary>
        private static string? Pick(string? value)
        {
            if (value is null)
            {
                return null;
            }

            var s = value.AsSpan().Trim();
            var semicolon = s.IndexOf(';');
            if (semicolon >= 0)
            {
                var type = s[..semicolon].Trim();
                if (!type.Equals("rfc822", StringComparison.OrdinalIgnoreCase) && !type.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
                    && !type.IsEmpty && !s[(semicolon + 1)..].TrimStart().StartsWith("<"))
                {
                    return null;
                }

                s = s[(semicolon + 1)..].Trim();
            }

            // "<addr> (comment)" or "Name <addr>": the bracketed address; else the first word.
            var open = s.IndexOf('<');
            if (open >= 0)
            {
                var close = s[open..].IndexOf('>');
                s = close > 0 ? s.Slice(open + 1, close - 1) : s[(open + 1)..];
            }
            else if (s.IndexOfAny(' ', '\t') is > 0 and var space)
            {
                s = s[..space];
            }

            var address = AddressText.Clean(s.ToString());
            return AddressText.LooksLikeAddress(address) ? address : null;
        }
    }
}
