// Whether a relay's TLS certificate is accepted: by the system's trust store (the default), by a
// pinned CA file (the chain must end in one of its certificates), or by a pinned SHA-256
// fingerprint of the server's own certificate. Validity dates are checked in every case, names
// with the trust store or a CA file; a pinned fingerprint names the one certificate accepted, so
// the host name is not compared with it (Postfix's fingerprint level: the pin is the identity, and
// a relay reached by its address keeps working). Revocation is not checked (no network access
// assumed beyond the relay).
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mailman.Delivery.Smtp;

public sealed class RelayTrust
{
    private readonly X509Certificate2Collection? _roots;
    private readonly byte[]? _fingerprint;
    private readonly bool _verify;

    private RelayTrust(X509Certificate2Collection? roots, byte[]? fingerprint, bool verify)
    {
        _roots = roots;
        _fingerprint = fingerprint;
        _verify = verify;
    }

    /// <summary>The system store, names and dates checked.</summary>
    public static RelayTrust System { get; } = new(null, null, verify: true);

    /// <summary>What the last refusal was about (for the connect error), or null.</summary>
    public static string Describe(SslPolicyErrors errors, X509Chain? chain)
    {
        var parts = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            parts.Add("no certificate");
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            parts.Add("name mismatch");
        }

        if (chain is not null)
        {
            foreach (var s in chain.ChainStatus)
            {
                parts.Add(s.Status.ToString());
            }
        }

        return parts.Count == 0 ? errors.ToString() : string.Join(", ", parts.Distinct());
    }

    /// <exception cref="InvalidOperationException">The CA file cannot be read or holds no certificate.</exception>
    public static RelayTrust Create(string caFile, string fingerprint, string key, bool verifyByDefault)
    {
        X509Certificate2Collection? roots = null;
        if (!string.IsNullOrEmpty(caFile))
        {
            roots = [];
            if (Instance.FileOwner.NotASettingsFile(caFile, 16 << 20) is { } why)
            {
                throw new InvalidOperationException($"configuration: {key}CaFile {caFile} {why}");
            }

            try
            {
                roots.ImportFromPemFile(caFile);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                throw new InvalidOperationException($"configuration: {key}CaFile {caFile} cannot be read: {Instance.FileOwner.WhyUnreadable(caFile, e)}", e);
            }

            if (roots.Count == 0)
            {
                throw new InvalidOperationException($"configuration: {key}CaFile {caFile} holds no PEM certificate");
            }
        }

        byte[]? pin = null;
        if (!string.IsNullOrEmpty(fingerprint) && !TryParseFingerprint(fingerprint, out pin))
        {
            throw new InvalidOperationException($"configuration: {key}Fingerprint must be a SHA-256 fingerprint: 64 hex digits, colons allowed");
        }

        return roots is null && pin is null && !verifyByDefault ? new RelayTrust(null, null, verify: false) : new RelayTrust(roots, pin, verify: true);
    }

    /// <summary>64 hex digits, optionally with colons and a "sha256:" prefix.</summary>
    public static bool TryParseFingerprint(string text, out byte[] fingerprint)
    {
        fingerprint = [];
        var hex = text.Trim();
        if (hex.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase))
        {
            hex = hex[7..];
        }

        hex = hex.Replace(":", "", StringComparison.Ordinal);
        if (hex.Length != 64)
        {
            return false;
        }

        try
        {
            fingerprint = Convert.FromHexString(hex);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>The SHA-256 fingerprint of a certificate, as <see cref="TryParseFingerprint"/> reads it.</summary>
    public static string FingerprintOf(X509Certificate certificate) => Convert.ToHexString(SHA256.HashData(certificate.GetRawCertData()));

    /// <summary>Decides on the certificate SslStream presents; <paramref name="refusal"/> says why not.</summary>
    public bool Accept(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, out string? refusal)
    {
        refusal = null;
        if (!_verify)
        {
            return true;
        }

        if (certificate is null)
        {
            refusal = "the server sent no certificate";
            return false;
        }

        using var leaf = new X509Certificate2(certificate);
        var now = DateTime.Now;
        if (now < leaf.NotBefore || now > leaf.NotAfter)
        {
            refusal = $"the server's certificate is not valid now (valid {leaf.NotBefore:u} to {leaf.NotAfter:u})";
            return false;
        }

        if (_fingerprint is not null)
        {
            if (CryptographicOperations.FixedTimeEquals(SHA256.HashData(leaf.RawData), _fingerprint))
            {
                return true;
            }

            refusal = $"the server's certificate has fingerprint {FingerprintOf(leaf)}, not the pinned one";
            return false;
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            // Both said when both are so (review 67: a self-signed certificate for another name
            // was reported only as the wrong name).
            var untrusted = _roots is null && (errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0
                ? ", and is not trusted by the system store: " + Describe(errors & ~SslPolicyErrors.RemoteCertificateNameMismatch, chain)
                : "";
            refusal = "the server's certificate does not name the relay host" + untrusted;
            return false;
        }

        if (_roots is null)
        {
            if (errors == SslPolicyErrors.None)
            {
                return true;
            }

            refusal = "the server's certificate is not trusted by the system store: " + Describe(errors, chain);
            return false;
        }

        using var own = new X509Chain();
        own.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        own.ChainPolicy.CustomTrustStore.AddRange(_roots);
        own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                own.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        if (own.Build(leaf))
        {
            return true;
        }

        refusal = "the server's certificate does not chain to CaFile: " + Describe(SslPolicyErrors.RemoteCertificateChainErrors, own);
        return false;
    }
}
