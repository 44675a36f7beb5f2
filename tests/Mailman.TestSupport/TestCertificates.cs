// Certificates made for a test, never from the system store: a CA, a server certificate it signed
// for 127.0.0.1 and localhost, an expired one it signed, and an unrelated CA. Written as PEM files
// for Postfix (smtpd_tls_cert_file, smtpd_tls_key_file) and for Mailman's CaFile.
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mailman.TestSupport;

public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string dir)
    {
        Directory = dir;
    }

    public string Directory { get; }

    /// <summary>The CA that signed the server certificates (PEM).</summary>
    public string CaFile => Path.Combine(Directory, "ca.pem");

    /// <summary>A CA that signed nothing here.</summary>
    public string OtherCaFile => Path.Combine(Directory, "other-ca.pem");

    public string ServerCertFile => Path.Combine(Directory, "server.pem");

    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    public string ExpiredCertFile => Path.Combine(Directory, "expired.pem");

    public string ExpiredKeyFile => Path.Combine(Directory, "expired.key");

    /// <summary>Signed by the CA, valid, but for wrong.example only (not localhost or 127.0.0.1).</summary>
    public string WrongNameCertFile => Path.Combine(Directory, "wrong-name.pem");

    public string WrongNameKeyFile => Path.Combine(Directory, "wrong-name.key");

    /// <summary>The wrong-name certificate with its key.</summary>
    public X509Certificate2 WrongName { get; private set; } = null!;

    /// <summary>The valid server certificate with its key (for an in-process server).</summary>
    public X509Certificate2 Server { get; private set; } = null!;

    public static TestCertificates Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "mailman-certs-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(dir);
        var certs = new TestCertificates(dir);
        var now = DateTimeOffset.UtcNow;
        using var ca = MakeCa("Mailman Test CA", now);
        using var other = MakeCa("Unrelated Test CA", now);
        File.WriteAllText(certs.CaFile, ca.ExportCertificatePem() + "\n");
        File.WriteAllText(certs.OtherCaFile, other.ExportCertificatePem() + "\n");
        certs.Server = MakeServer(ca, now.AddDays(-1), now.AddDays(30), certs.ServerCertFile, certs.ServerKeyFile);
        MakeServer(ca, now.AddDays(-20), now.AddDays(-2), certs.ExpiredCertFile, certs.ExpiredKeyFile).Dispose();
        certs.WrongName = MakeServer(ca, now.AddDays(-1), now.AddDays(30), certs.WrongNameCertFile, certs.WrongNameKeyFile, "wrong.example");
        return certs;
    }

    public void Dispose()
    {
        Server?.Dispose();
        WrongName?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, true);
        }
        catch (IOException)
        {
        }
    }

    private static X509Certificate2 MakeCa(string name, DateTimeOffset now)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddDays(-30), now.AddDays(60));
    }

    private static X509Certificate2 MakeServer(X509Certificate2 ca, DateTimeOffset notBefore, DateTimeOffset notAfter, string certFile, string keyFile, string name = "localhost")
    {
        // RSA: Postfix's smtpd_tls_cert_file is its RSA slot.
        var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        if (name == "localhost")
        {
            names.AddIpAddress(IPAddress.Loopback);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, false, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var signed = request.Create(ca, notBefore, notAfter, serial);
        File.WriteAllText(certFile, signed.ExportCertificatePem() + "\n" + ca.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var withKey = signed.CopyWithPrivateKey(key);

        // A PKCS#12 round trip gives SslStream a certificate whose key it can use on a server.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
