// MailKit's SmtpClient with the seams a list server needs: per-recipient refusals are recorded
// instead of failing the transaction, the size is known without serializing the copy again, and
// nothing is re-encoded per copy.
using System.Net.Security;
using MailKit.Net.Smtp;
using MimeKit;

namespace Mailman.Delivery.Smtp;

internal sealed class ListSmtpClient(bool preferBdat) : SmtpClient
{
    /// <summary>The connection's socket as a buffered stream: copies write their bodies to it (DATA and BDAT).</summary>
    public Stream? Wire { get; set; }

    /// <summary>
    /// MailKit's own TLS stream, once negotiated: SslStream passes itself as the sender of the
    /// client certificate selection callback, which it calls as the handshake starts. (MailKit
    /// hands the certificate validation callback the host name instead, and keeps the stream.)
    /// </summary>
    public SslStream? Tls { get; private set; }

    protected override SslClientAuthenticationOptions GetSslClientAuthenticationOptions(string host, RemoteCertificateValidationCallback remoteCertificateValidationCallback)
    {
        var options = base.GetSslClientAuthenticationOptions(host, remoteCertificateValidationCallback);
        var select = options.LocalCertificateSelectionCallback;
        options.LocalCertificateSelectionCallback = (sender, targetHost, local, remote, issuers) =>
        {
            Tls = sender as SslStream;
            return select?.Invoke(sender, targetHost, local, remote, issuers) ?? (local.Count > 0 ? local[0] : null)!;
        };
        return options;
    }

    /// <summary>The server offers SMTPUTF8 (set once the session is open: Capabilities may have it turned off for a transaction since).</summary>
    public bool OffersUtf8 { get; set; }

    /// <summary>Recipients the server refused in the current transaction, with its reply.</summary>
    public List<(MailboxAddress Mailbox, SmtpStatusCode Status, string Response)> Refused { get; } = [];

    /// <summary>Whether the server answered MAIL FROM in the current transaction (before it, no data was sent).</summary>
    public bool SenderAccepted { get; set; }

    protected override void OnSenderAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
    {
        SenderAccepted = true;
        base.OnSenderAccepted(message, mailbox, response);
    }

    protected override bool PreferSendAsBinaryData => preferBdat;

    protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
        => Refused.Add((mailbox, response.StatusCode, response.Response));

    protected override void Prepare(FormatOptions options, MimeMessage message, EncodingConstraint constraint, int maxLineLength)
    {
        if (message.Body is SplicedBody body)
        {
            // MailKit's choice between BDAT and DATA (SmtpClient.UseBdatCommand), for a copy
            // that never carries binary parts.
            body.DotStuff = !(PreferSendAsBinaryData && (Capabilities & (SmtpCapabilities.Chunking | SmtpCapabilities.BinaryMime)) != 0);
            body.Wire = Wire;
        }
        else
        {
            base.Prepare(options, message, constraint, maxLineLength);
        }
    }

    protected override long GetSize(FormatOptions options, MimeMessage message, CancellationToken cancellationToken)
        => message.Body is SplicedBody body ? body.Size : base.GetSize(options, message, cancellationToken);

    protected override Task<long> GetSizeAsync(FormatOptions options, MimeMessage message, CancellationToken cancellationToken)
        => Task.FromResult(GetSize(options, message, cancellationToken));
}
