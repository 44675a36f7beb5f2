// The moderation chain: every post runs through these rules, in Mailman 3's order, before it
// enters the pipeline. The chain is data (Mailman:Moderation:Chain, a list of names, as the
// pipeline is); a name is one of the rules in Moderation/Rules or a check from the handler
// catalog (loop-detection, dmarc-moderation, maximum-size). Accept, reject and discard end the chain;
// a hold does not: the remaining rules run and every one that hits is recorded with the held post.
using Mailman.Moderation.Rules;
using Mailman.Pipeline;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mailman.Moderation;

/// <summary>One rule that hit, and what it said.</summary>
public sealed record RuleHit(string Rule, Verdict Verdict, string Reason)
{
    public override string ToString() => $"{Rule}: {Reason}";
}

/// <summary>What the chain decided: accept (on to the pipeline), hold, reject or discard, and every hit behind it.</summary>
public sealed record ChainDecision(Verdict Verdict, IReadOnlyList<RuleHit> Hits)
{
    /// <summary>The rule names that hit, comma-separated (for the vette log).</summary>
    public string Rules => Hits.Count == 0 ? "-" : string.Join(", ", Hits.Select(h => h.Rule));

    /// <summary>The reasons, "rule: reason; ...".</summary>
    public string Reason => string.Join("; ", Hits);

    /// <summary>The reasons alone, "reason; ..." (beside <see cref="Rules"/> in a log line).</summary>
    public string Reasons => string.Join("; ", Hits.Select(h => h.Reason));
}

public sealed class ModerationChain
{
    /// <summary>
    /// Mailman 3's order (config/mailman.json ships the same); loop detection first. The size
    /// limit is not among them: the incoming runner holds a post over it before reading it.
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultRules =
    [
        "loop-detection", "dmarc-moderation", "approved", "emergency", "auto-reply", "posting-rate", "member-moderation", "nonmember-moderation",
        "administrivia", "max-recipients", "implicit-dest", "suspicious-header",
    ];

    // Checks from the handler catalog that guard the list itself: they run for approved posts too.
    private static readonly HashSet<string> AlwaysRun = new(StringComparer.OrdinalIgnoreCase) { "loop-detection" };

    private readonly ILogger _logger;

    /// <exception cref="InvalidOperationException">A name is neither a rule nor a handler.</exception>
    /// <param name="names">The rule names, in order.</param>
    /// <param name="checks">Handlers a name may also refer to (the handler catalog's).</param>
    /// <param name="logger">For the vette log.</param>
    public ModerationChain(IEnumerable<string> names, IEnumerable<IHandler> checks, ILogger<ModerationChain>? logger = null)
    {
        _logger = logger ?? NullLogger<ModerationChain>.Instance;
        var own = AllRules().ToDictionary(r => r.Name, StringComparer.OrdinalIgnoreCase);
        var handlers = checks.ToDictionary(h => h.Name, StringComparer.OrdinalIgnoreCase);
        Rules = names.Select(n => own.TryGetValue(n, out var rule) ? rule
            : handlers.TryGetValue(n, out var handler) ? new HandlerRule(handler, !AlwaysRun.Contains(n))
            : throw new InvalidOperationException($"configuration: unknown moderation rule '{n}'; known: {string.Join(", ", own.Keys.Concat(handlers.Keys))}")).ToList();
    }

    public IReadOnlyList<IRule> Rules { get; }

    /// <summary>Every name a chain may hold: the rules of Moderation/Rules and the handler catalog's checks.</summary>
    public static IEnumerable<string> Names => AllRules().Select(r => r.Name).Concat(HandlerCatalog.Checks);

    /// <summary>Every rule of Moderation/Rules, by name.</summary>
    public static IEnumerable<IRule> AllRules() =>
    [
        new Approved(), new Emergency(), new AutoReply(), new PostingRate(), new MemberModeration(), new NonmemberModeration(),
        new Administrivia(), new MaxRecipients(), new ImplicitDestination(), new SuspiciousHeader(),
    ];

    /// <summary>
    /// Runs the chain over the post of entry <paramref name="entry"/> and logs (area vette) a
    /// reject, a discard, or an accept some rule decided; holds are logged where they are held.
    /// </summary>
    public ChainDecision Evaluate(ModerationContext context, string entry)
    {
        var decision = Evaluate(context);
        if (decision.Verdict != Verdict.Hold && decision.Hits.Count > 0)
        {
            _logger.Log(decision.Verdict == Verdict.Accept ? LogLevel.Information : LogLevel.Warning,
                "{Action}: post {MessageId} to {ListId} from {Sender} (entry {QueueEntry}) by {Rules}: {Reason}",
                decision.Verdict.ToString().ToUpperInvariant(), context.Metadata.MessageIdForLog, context.List.Name.Fqdn, context.Senders.Summary, entry, decision.Rules, decision.Reasons);
        }

        return decision;
    }

    /// <summary>Runs the chain over one post.</summary>
    public ChainDecision Evaluate(ModerationContext context)
    {
        var hits = new List<RuleHit>();
        var holding = false;
        foreach (var rule in Rules)
        {
            if (context.Approved && rule.SkippedWhenApproved)
            {
                continue;
            }

            var result = rule.Check(context);
            if (!result.Hit)
            {
                continue;
            }

            if (holding)
            {
                // Held already (Mailman 3 jumps to the hold chain): later holds add their reasons;
                // a later accept, reject or discard cannot override the hold.
                if (result.Verdict == Verdict.Hold)
                {
                    hits.Add(new RuleHit(rule.Name, result.Verdict, result.Reason));
                }

                continue;
            }

            hits.Add(new RuleHit(rule.Name, result.Verdict, result.Reason));
            if (result.Verdict == Verdict.Hold)
            {
                holding = true;
                continue;
            }

            return new ChainDecision(result.Verdict, hits);
        }

        return new ChainDecision(holding ? Verdict.Hold : Verdict.Accept, hits);
    }
}
