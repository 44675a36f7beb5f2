// Entry point of the one `mailman` executable.
return Mailman.Cli.MailmanCli.Run(args);
