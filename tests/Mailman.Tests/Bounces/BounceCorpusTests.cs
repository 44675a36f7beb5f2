// GNU Mailman 2.1's bounce corpus (shared/corpora/bounces-mailman21, EXPECTED.tsv) through the
// whole classifier: one case per file, so a failure names the file.
using Mailman.Bounces;
using MimeKit;

namespace Mailman.Tests.Bounces;

public sealed class BounceCorpusTests
{
    private const string CorpusPath = "shared/corpora/bounces-mailman21";

    private const string Missing = "(corpus missing)";

    /// <summary>The corpus folder: the nearest shared/corpora/bounces-mailman21 above the test binaries.</summary>
    private static readonly Lazy<(string? Directory, string Searched)> Corpus = new(() =>
    {
        var searched = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, CorpusPath);
            searched.Add(candidate);
            if (File.Exists(Path.Combine(candidate, "EXPECTED.tsv")))
            {
                return (candidate, "");
            }
        }

        return (null, string.Join(", ", searched));
    });

    /// <summary>Every file named in EXPECTED.tsv; one failing case if the corpus is missing.</summary>
    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        if (Corpus.Value.Directory is null)
        {
            data.Add(Missing);
            return data;
        }

        foreach (var file in Rows().Select(r => r.File).Distinct(StringComparer.Ordinal))
        {
            data.Add(file);
        }

        return data;
    }

    /// <summary>
    /// A permanent file must classify as permanent with exactly the union of its rows' addresses
    /// (groupwise_02: GroupWise finds nothing, Exchange finds the address; the union is that
    /// address). A file whose only permanent rows have no addresses (groupwise_03, a person's
    /// reply with attachments; qmail_08, an auto-reply in a charset .NET does not know) is Mailman
    /// saying "this detector must find nothing": it must name no address and not be permanent.
    /// A warning file must not be permanent.
    /// </summary>
    [Theory]
    [MemberData(nameof(Files))]
    public void Every_corpus_file_classifies_as_Mailman_expects(string file)
    {
        Assert.True(Corpus.Value.Directory is not null && file != Missing,
            $"the bounce corpus ({CorpusPath}/EXPECTED.tsv) was not found; looked in: {Corpus.Value.Searched}");
        var rows = Rows().Where(r => r.File == file).ToList();
        var result = Classify(file);
        var described = $"{file}: {result.KindName} [{string.Join(' ', result.Addresses.Select(a => a.Address))}] by {result.Detector ?? "none"}";

        if (rows.Any(r => r.Kind == "permanent"))
        {
            var expected = rows.SelectMany(r => r.Addresses).ToHashSet(StringComparer.OrdinalIgnoreCase);
            if (expected.Count == 0)
            {
                Assert.True(result.Kind != BounceKind.Permanent && result.Addresses.Count == 0, $"expected no bounce; got {described}");
                return;
            }

            Assert.True(result.Kind == BounceKind.Permanent, $"expected permanent [{string.Join(' ', expected)}]; got {described}");
            Assert.True(expected.SetEquals(result.Addresses.Select(a => a.Address)), $"expected [{string.Join(' ', expected)}]; got {described}");
        }
        else
        {
            Assert.True(result.Kind == BounceKind.Temporary, $"expected temporary (a warning); got {described}");
        }
    }

    [Fact]
    public void Files_without_an_expectation_still_classify_without_throwing()
    {
        Assert.True(Corpus.Value.Directory is not null, $"the bounce corpus was not found; looked in: {Corpus.Value.Searched}");
        var named = Rows().Select(r => r.File).ToHashSet(StringComparer.Ordinal);
        var others = Directory.GetFiles(Corpus.Value.Directory!, "*.txt").Select(Path.GetFileName).Where(f => !named.Contains(f!)).ToList();
        foreach (var file in others)
        {
            Assert.NotNull(Classify(file!));
        }
    }

    [Fact]
    public void Damaged_corpus_files_never_make_the_classifier_throw()
    {
        Assert.True(Corpus.Value.Directory is not null, $"the bounce corpus was not found; looked in: {Corpus.Value.Searched}");
        var random = new Random(3464);
        foreach (var file in Directory.GetFiles(Corpus.Value.Directory!, "*.txt"))
        {
            var raw = File.ReadAllBytes(file);
            var truncated = raw[..(raw.Length / 2)];
            var flipped = (byte[])raw.Clone();
            for (var i = 0; i < flipped.Length / 50; i++)
            {
                flipped[random.Next(flipped.Length)] = (byte)random.Next(256);
            }

            foreach (var damaged in new[] { truncated, flipped })
            {
                var result = BounceClassifier.Classify(new MemoryStream(damaged));
                Assert.True(result.Kind != BounceKind.Permanent || result.Addresses.Count > 0, Path.GetFileName(file));
            }
        }
    }

    private static BounceAnalysis Classify(string file)
    {
        using var message = MimeMessage.Load(Path.Combine(Corpus.Value.Directory!, file));
        return BounceClassifier.Classify(message);
    }

    private sealed record Row(string File, string Detector, string Kind, string[] Addresses);

    private static IEnumerable<Row> Rows()
        => File.ReadLines(Path.Combine(Corpus.Value.Directory!, "EXPECTED.tsv"))
            .Where(line => line.Length > 0 && !line.StartsWith('#') && !line.StartsWith("file\t", StringComparison.Ordinal))
            .Select(line => line.Split('\t'))
            .Select(f => new Row(f[0], f[1], f[2], f.Length > 3 ? f[3].Split(' ', StringSplitOptions.RemoveEmptyEntries) : []));
}
