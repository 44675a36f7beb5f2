// The daemon runs on Linux list servers (systemd, Postfix, POSIX file modes and fsync).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
