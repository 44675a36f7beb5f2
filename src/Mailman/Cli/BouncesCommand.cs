// `mailman bounces scan FILE... [--json]`: classifies saved messages offline, as the bounce
// runner will: kind, addresses, detector per file. Needs no instance and touches none.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mailman.Bounces;

namespace Mailman.Cli;

internal static class BouncesCommand
{
    public static Command Create()
    {
        var command = new Command("bounces", "bounce recognition");

        var files = new Argument<string[]>("file") { Description = "saved messages (.eml, mbox-free RFC 5322 files)", Arity = ArgumentArity.OneOrMore };
        var json = new Option<bool>("--json") { Description = "one JSON object a line: file, kind, addresses, detector" };
        var scan = new Command("scan", "classify messages: permanent, temporary, not-a-bounce or unrecognized") { files, json };
        scan.SetAction(parse => MailmanCli.Guard(parse, _ =>
        {
            var asJson = parse.GetValue(json);
            var exit = ExitCodes.Ok;
            using var output = new StreamWriter(Console.OpenStandardOutput());
            foreach (var file in parse.GetValue(files)!)
            {
                BounceAnalysis result;
                try
                {
                    using var stream = File.OpenRead(file);
                    result = BounceClassifier.Classify(stream);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Reported, and the others still scanned: EX_NOINPUT at the end.
                    output.Flush();
                    Console.Error.WriteLine(Directory.Exists(file) ? $"mailman: {file} is a directory, not a file" : $"mailman: {file}: {e.Message}");
                    exit = ExitCodes.NoInput;
                    continue;
                }

                output.WriteLine(asJson ? JsonSerializer.Serialize(ScanLine.From(file, result), BouncesJson.Default.ScanLine) : Text(file, result));
            }

            return exit;
        }, readOnly: true, needsInstance: false));
        command.Subcommands.Add(scan);
        return command;
    }

    /// <summary>The addresses of a permanent report the bounce processor does not score (<see cref="SmtpRefusals.IsAboutTheMessageOrUs"/>), or null.</summary>
    internal static List<BouncedAddress>? NotScored(BounceAnalysis result)
        => result.Kind == BounceKind.Permanent && result.Addresses.Where(a => SmtpRefusals.IsAboutTheMessageOrUs(a.Status, a.Diagnostic, a.Address)).ToList() is { Count: > 0 } list ? list : null;

    // What a format without a status said, as the bounce log quotes it: cut.
    private static string Quoted(string? said) => said is null ? "" : $"\"{(said.Length > 60 ? said[..57] + "..." : said)}\"";

    /// <summary>"FILE: kind, addresses, detector" (a dash for none), the addresses not scored, and the complaint if any.</summary>
    internal static string Text(string file, BounceAnalysis result)
    {
        var addresses = result.Addresses.Count == 0 ? "-" : string.Join(' ', result.Addresses.Select(a => a.Address));
        var line = $"{file}: {result.KindName}, {addresses}, {result.Detector ?? "-"}";
        if (NotScored(result) is { } notScored)
        {
            // Review 50: a DSN the processor will not score showed as any other permanent one.
            line += $", not scored ({string.Join(' ', notScored.Select(a => $"{a.Address} {a.Status ?? Quoted(a.Diagnostic)}"))}: about the message or our server, not the address)";
        }

        return result.Complaint is { } c
            ? $"{line}, complaint {c.FeedbackType ?? "?"} by {(c.OriginalRecipients.Count == 0 ? "?" : string.Join(' ', c.OriginalRecipients))}"
            : line;
    }
}

/// <summary>One line of `mailman bounces scan --json`.</summary>
internal sealed record ScanLine(
    string File,
    string Kind,
    List<string> Addresses,
    string? Detector,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ScanComplaint? Complaint)
{
    /// <summary>Addresses of a permanent report that are not scored (their status is about the message or our server).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? NotScored { get; init; }

    public static ScanLine From(string file, BounceAnalysis result) => new(
        file,
        result.KindName,
        result.Addresses.Select(a => a.Address).ToList(),
        result.Detector,
        result.Complaint is { } c ? new ScanComplaint(c.FeedbackType, c.OriginalRecipients.ToList()) : null)
    {
        NotScored = BouncesCommand.NotScored(result)?.ConvertAll(a => a.Address),
    };
}

/// <summary>An ARF complaint in `mailman bounces scan --json`.</summary>
internal sealed record ScanComplaint(string? FeedbackType, List<string> Recipients);

/// <summary>Source-generated (Native AOT), camelCase; "detector" is null when unrecognized.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ScanLine))]
internal sealed partial class BouncesJson : JsonSerializerContext;
