// `mailman aliases`: the Postfix side of every list. Writes a postmap-ready transport map that
// routes each list address (LIST, LIST-bounces, -request, -owner, -join, -leave, -subscribe,
// -unsubscribe, -confirm: ListAddress.Suffixes) to the `mailmanq` pipe transport (or, with
// --lmtp, to the daemon's LMTP listener), the exact main.cf and master.cf lines that go with
// it, and what to check in the Postfix configuration it is added to.
using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Mailman.Instance;
using Mailman.Lists;

namespace Mailman.Cli;

internal static class AliasesCommand
{
    public static Command Create()
    {
        var output = new Option<string?>("--output") { Description = "directory for the files (default: var/postfix in the instance)" };
        var user = new Option<string>("--pipe-user") { Description = "user the pipe runs as (Postfix never pipes as root)", DefaultValueFactory = _ => "mailman" };
        var postmap = new Option<bool>("--postmap") { Description = "run postmap on the transport map" };
        var postfixConfig = new Option<string?>("--postfix-config") { Description = "Postfix configuration directory for postmap -c (default: Postfix's own)" };
        var lmtp = new Option<bool>("--lmtp") { Description = "route the lists to the daemon's LMTP listener (Mailman:Lmtp:Url, default 127.0.0.1:8024) instead of the pipe" };
        var command = new Command("aliases", "write the Postfix transport map and configuration for every list") { output, user, postmap, postfixConfig, lmtp };
        command.SetAction(parse => MailmanCli.Guard(parse, paths =>
        {
            // The name goes into master.cf as user=NAME: one word a Unix user name can be (review 39:
            // 'bad user' broke the line).
            var pipeUser = parse.GetValue(user)!;
            if (!System.Text.RegularExpressions.Regex.IsMatch(pipeUser, "^[a-z_][a-z0-9_.-]{0,31}$"))
            {
                throw new CliException(ExitCodes.Usage, $"--pipe-user '{pipeUser.ReplaceLineEndings(" ")}' is not a user name (lower-case letters, digits, '_', '-', '.')");
            }

            // pipe(8) refuses a user= with root privileges, fatally: every post would be deferred
            // (review 109: the owner warning below told a root-owned instance to name root).
            if (!parse.GetValue(lmtp) && FileOwner.UidOf(pipeUser) == 0)
            {
                throw new CliException(ExitCodes.Usage, $"--pipe-user {pipeUser}: Postfix's pipe never runs as root (pipe(8) refuses user= with root privileges); give the instance a user of its own (useradd --system mailman; chown -R mailman: {paths.Home}) and name it, or route by LMTP (--lmtp)");
            }

            var dir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine(paths.VarDirectory, "postfix"));
            Directory.CreateDirectory(dir);
            using var store = new ListStore(paths.Database);
            var lists = store.AllLists();
            string? lmtpNexthop = null;
            string? lmtpWarning = null;
            if (parse.GetValue(lmtp))
            {
                var options = Hosting.MailmanConfiguration.Options(Hosting.MailmanConfiguration.Build(paths));
                lmtpNexthop = LmtpNexthop(options.Lmtp.Url.Length > 0 ? options.Lmtp.Url : Instance.LmtpOptions.DefaultUrl);
                if (options.Lmtp.Url.Length == 0)
                {
                    // The daemon listens only when the URL is set: Postfix would defer every post (review 94).
                    lmtpWarning = $"# WARNING: Mailman:Lmtp:Url is not set (neither in {paths.ConfigFile} nor in this environment): unless the daemon's own environment sets it, it does not listen for LMTP and Postfix defers every post; set it to {Instance.LmtpOptions.DefaultUrl} and restart the daemon";
                }
            }

            var files = Write(paths, dir, lists.Select(l => l.Name), pipeUser, lmtpNexthop);
            if (parse.GetValue(postmap))
            {
                RunPostmap(files.Transport, parse.GetValue(postfixConfig));
                Public(files.Transport + ".db");
            }

            Console.WriteLine($"wrote {files.Transport} ({lists.Count} lists)");
            Console.WriteLine();
            Console.WriteLine("# main.cf (postconf -e each line, or append):");
            Console.Write(files.MainCf);
            Console.WriteLine();
            Console.WriteLine("# master.cf (append):");
            Console.Write(files.MasterCf);
            Console.WriteLine();
            Console.WriteLine($"# then: postmap hash:{files.Transport} && postfix reload");
            Console.WriteLine();
            foreach (var line in Checks(lists.Select(l => l.Name.Domain).Distinct(StringComparer.OrdinalIgnoreCase).ToList(), parse.GetValue(postfixConfig), lmtpNexthop is not null))
            {
                Console.WriteLine(line);
            }

            if ((lmtpNexthop is null ? PipeUserWarning(pipeUser, paths) : lmtpWarning) is { } warning)
            {
                Console.WriteLine(warning);
            }

            return 0;
        }));
        return command;
    }

    // inject as a user that does not own the instance defers every post (75): said now, not in the mail log.
    private static string? PipeUserWarning(string pipeUser, InstancePaths paths)
    {
        if (FileOwner.UidOf(pipeUser) is not { } uid)
        {
            return $"# WARNING: there is no user {pipeUser} on this machine: Postfix's pipe would fail (create it, or give --pipe-user the instance's owner)";
        }

        return FileOwner.Uid(paths.Home) is { } owner && owner != uid
            ? $"# WARNING: the pipe user {pipeUser} does not own {paths.Home} ({FileOwner.Describe(paths.Home)}): inject would defer every post (75); "
                + (owner == 0 ? $"Postfix's pipe never runs as root: chown -R {pipeUser}: {paths.Home} (and run the daemon as {pipeUser}), or route by LMTP (--lmtp)" : $"give --pipe-user {FileOwner.UserName(owner)}")
            : null;
    }

    public sealed record PostfixFiles(string Transport, string MainCf, string MasterCf);

    /// <summary>
    /// The master.cf service of the pipe. Not `mailman`: Debian's stock master.cf already has a
    /// `mailman` service (GNU Mailman 2.1's postfix-to-mailman.py), and a second entry of the same
    /// name makes Postfix warn on every start and use the last one. No hyphen either, so the
    /// per-transport parameter (mailmanq_destination_recipient_limit) is a plain name.
    /// </summary>
    public const string Service = "mailmanq";

    /// <summary>Postfix's nexthop for an LMTP URL: lmtp://127.0.0.1:8024 → lmtp:inet:127.0.0.1:8024.</summary>
    public static string LmtpNexthop(string url)
    {
        var uri = new Uri(url);
        var host = uri.HostNameType == UriHostNameType.IPv6 ? "[" + uri.Host.Trim('[', ']') + "]" : uri.Host;
        return $"lmtp:inet:{host}:{(uri.Port > 0 ? uri.Port : Instance.LmtpOptions.DefaultPort)}";
    }

    /// <summary>Writes transport, main.cf.snippet and master.cf.snippet into <paramref name="dir"/>.</summary>
    /// <param name="lmtpNexthop">Route to the daemon's LMTP listener (lmtp:inet:HOST:PORT) instead of the pipe.</param>
    public static PostfixFiles Write(InstancePaths paths, string dir, IEnumerable<ListName> lists, string pipeUser, string? lmtpNexthop = null)
    {
        var nexthop = lmtpNexthop ?? Service + ":";
        var transport = new StringBuilder("# Generated by `mailman aliases`; do not edit. postmap hash:" + Path.Combine(dir, "transport") + "\n");
        var domains = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var list in lists.OrderBy(l => l.Fqdn, StringComparer.Ordinal))
        {
            domains.Add(list.Domain);
            foreach (var (suffix, _, _) in ListAddress.Suffixes)
            {
                transport.Append(list.LocalPart).Append(suffix).Append('@').Append(list.Domain).Append('\t').Append(nexthop).Append('\n');
            }
        }

        var transportPath = Path.Combine(dir, "transport");
        File.WriteAllText(transportPath, transport.ToString());

        var mainCf = lmtpNexthop is null
            ? $"""
            # Mailman: list domains (never in mydestination), routed to the {Service} pipe by the transport map.
            relay_domains = {string.Join(", ", domains)}
            relay_recipient_maps = hash:{transportPath}
            transport_maps = hash:{transportPath}
            # VERP bounces (LIST-bounces+member=domain@HOST) match LIST-bounces@HOST.
            recipient_delimiter = +
            # One recipient per pipe call, so each post is injected once per list address.
            {Service}_destination_recipient_limit = 1

            """
            : $"""
            # Mailman: list domains (never in mydestination), delivered over LMTP to the daemon ({lmtpNexthop}).
            relay_domains = {string.Join(", ", domains)}
            relay_recipient_maps = hash:{transportPath}
            transport_maps = hash:{transportPath}
            # VERP bounces (LIST-bounces+member=domain@HOST) match LIST-bounces@HOST.
            recipient_delimiter = +

            """;
        // Flags: X final delivery (Postfix logs "delivered"). Sites that keep Mailman 2.1's
        // flags=FR or DRhu work too: inject drops the From_ line and reads the envelope sender
        // from it or from Return-Path when --sender is absent.
        var masterCf = lmtpNexthop is null
            ? $$"""
            {{Service}}  unix  -       n       n       -       -       pipe
              flags=X user={{pipeUser}} argv={{Invocation()}} --home {{paths.Home}} inject --sender=${sender} -- ${recipient}

            """
            : """
            # nothing new: Postfix's own lmtp transport delivers to the daemon (Mailman:Lmtp:Url).
            # Debian's stock master.cf has it; if yours does not, add:
            # lmtp      unix  -       -       y       -       -       lmtp

            """;
        File.WriteAllText(Path.Combine(dir, "main.cf.snippet"), mainCf);
        File.WriteAllText(Path.Combine(dir, "master.cf.snippet"), masterCf);

        // List addresses are not secret, and Postfix's own users read the map.
        foreach (var f in new[] { transportPath, Path.Combine(dir, "main.cf.snippet"), Path.Combine(dir, "master.cf.snippet") })
        {
            Public(f);
        }

        Public(dir, directory: true);

        // Postfix's trivial-rewrite (user postfix) must reach the map through var/: traverse
        // only (0711), so the database and the other files there stay unlisted and private.
        var parent = Path.GetDirectoryName(dir);
        if (parent == paths.VarDirectory && Directory.Exists(parent))
        {
            var mode = File.GetUnixFileMode(parent);
            File.SetUnixFileMode(parent, mode | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        }
        return new PostfixFiles(transportPath, mainCf, masterCf);
    }

    /// <summary>
    /// What to check in the Postfix the snippets go into: a list domain in mydestination makes
    /// Postfix deliver the lists' mail locally (and refuse it as unknown users) instead of
    /// relaying it to us; Debian's own `mailman` service stays beside ours. Asks postconf when it
    /// is installed.
    /// </summary>
    public static IEnumerable<string> Checks(IReadOnlyList<string> domains, string? configDirectory, bool lmtp)
    {
        yield return "# check:";
        yield return "#   the list domains must be in relay_domains and NOT in mydestination (postconf -h mydestination);";
        yield return $"#   master.cf keeps any `mailman` service (Debian's GNU Mailman 2.1); ours is named `{Service}`{(lmtp ? " (not needed with --lmtp)" : "")}.";
        if (lmtp)
        {
            yield return "#   the daemon must run with Mailman:Lmtp:Url set to the address in the transport map.";
        }

        var mydestination = Postconf("mydestination", configDirectory);
        if (mydestination is null)
        {
            yield break;
        }

        var names = mydestination.Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        var hostname = Postconf("myhostname", configDirectory) ?? "";
        var domain = Postconf("mydomain", configDirectory) ?? "";
        var expanded = names.Select(n => n.Replace("$myhostname", hostname, StringComparison.Ordinal).Replace("$mydomain", domain, StringComparison.Ordinal)).ToList();
        foreach (var d in domains.Where(d => expanded.Contains(d, StringComparer.OrdinalIgnoreCase)))
        {
            yield return $"# WARNING: {d} is in mydestination ({mydestination}): Postfix would deliver its mail locally. Remove it there; relay_domains carries it.";
        }
    }

    private static string? Postconf(string parameter, string? configDirectory)
    {
        if (!File.Exists("/usr/sbin/postconf"))
        {
            return null;
        }

        var psi = new ProcessStartInfo("/usr/sbin/postconf") { RedirectStandardError = true, RedirectStandardOutput = true };
        if (configDirectory is not null)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(configDirectory);
        }

        psi.ArgumentList.Add("-h");
        psi.ArgumentList.Add(parameter);
        try
        {
            using var p = Process.Start(psi);
            if (p is null)
            {
                return null;
            }

            var output = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? output.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    /// <summary>How to run this mailman: `dotnet /path/mailman.dll` or the apphost itself.</summary>
    public static string Invocation()
    {
        var process = Environment.ProcessPath ?? "dotnet";
        var dll = Path.Combine(AppContext.BaseDirectory, "mailman.dll");
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? $"{process} {dll}" : process;
    }

    private static void Public(string path, bool directory = false)
    {
        if (File.Exists(path) || Directory.Exists(path))
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead
                | (directory ? UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute : 0));
        }
    }

    private static void RunPostmap(string transport, string? configDirectory)
    {
        var psi = new ProcessStartInfo("postmap") { RedirectStandardError = true };
        if (configDirectory is not null)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(configDirectory);
        }

        psi.ArgumentList.Add("hash:" + transport);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot run postmap");
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"postmap failed: {error.Trim()}");
        }
    }
}
