// Entry point of the one `mailman` executable. Everything it creates holds member addresses or
// mail (the database, queue files, logs): private to the instance's user whatever umask it was
// started with (an MTA pipe, a shell with 022).
Mailman.Instance.FileOwner.RestrictUmask();
return Mailman.Cli.MailmanCli.Run(args);
