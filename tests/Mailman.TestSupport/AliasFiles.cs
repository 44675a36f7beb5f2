// What `mailman aliases` writes for an instance (var/postfix/: transport map, main.cf and
// master.cf snippets), read back to configure a private Postfix the way the README says.
using Xunit;

namespace Mailman.TestSupport;

public sealed record AliasFiles(string Transport, string MainCf, string MasterCf, string Stdout)
{
    /// <summary>Runs `mailman aliases` (by default `--pipe-user nobody`) and reads what it wrote.</summary>
    public static AliasFiles Write(string home, string[]? args = null, IDictionary<string, string>? env = null)
    {
        var result = MailmanProcess.Run(home, ["aliases", .. args ?? ["--pipe-user", "nobody"]], env: env);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var dir = Path.Combine(home, "var", "postfix");
        return new AliasFiles(
            Path.Combine(dir, "transport"),
            File.ReadAllText(Path.Combine(dir, "main.cf.snippet")),
            File.ReadAllText(Path.Combine(dir, "master.cf.snippet")),
            result.Stdout);
    }

    /// <summary>A private Postfix relaying to <paramref name="relayPort"/>, configured with these files (or the given replacements), its transport map built, started.</summary>
    public PostfixInstance StartPostfix(int relayPort, string? mainCf = null, string? masterCf = null)
    {
        var postfix = PostfixInstance.Create(relayPort, mainCf ?? MainCf, masterCf ?? MasterCf);
        try
        {
            postfix.Postmap(Transport);
            postfix.Start();
            return postfix;
        }
        catch
        {
            postfix.Dispose();
            throw;
        }
    }

    /// <summary>Postfix's pipe runs `inject` as nobody: the instance becomes theirs.</summary>
    public static void HandToNobody(string home) => Assert.Equal(0, PostfixInstance.Run("chown", "-R", "nobody:nogroup", home));
}
