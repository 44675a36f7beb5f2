// A scripted TXT resolver: answers from a table, NXDOMAIN otherwise, and records every query.
using Mailman.Dmarc;

namespace Mailman.Tests.Dmarc;

public sealed class FakeTxtResolver : ITxtResolver
{
    private readonly Dictionary<string, TxtAnswer> _answers = new(StringComparer.OrdinalIgnoreCase);

    public List<string> Queries { get; } = [];

    /// <summary>TXT records at a name (a _dmarc name, usually).</summary>
    public FakeTxtResolver Txt(string name, params string[] records) => Answer(name, new TxtAnswer(DnsStatus.Ok, records, TimeSpan.FromMinutes(10)));

    public FakeTxtResolver Answer(string name, TxtAnswer answer)
    {
        _answers[name] = answer;
        return this;
    }

    public TxtAnswer QueryTxt(string name)
    {
        Queries.Add(name);
        return _answers.TryGetValue(name, out var answer) ? answer : new TxtAnswer(DnsStatus.NameError, [], TimeSpan.FromMinutes(5));
    }
}
