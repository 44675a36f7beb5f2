// MimeShape: the header blocks of a message's parts, counted as it streams in. It must never
// count fewer fields than MimeKit parses (real mail from other projects and hostile shapes),
// must not depend on how the bytes are cut, and must leave real mail far under its limits.
using System.Text;
using Mailman.Queues;
using MimeKit;

namespace Mailman.Tests.Queues;

public sealed class MimeShapeTests
{
    private static string Fields(int count) => string.Concat(Enumerable.Range(0, count).Select(i => $"X-F{i}: x\n"));

    // Hostile shapes, by the number of nested fields they carry. (After a second blank line
    // MimeKit reads an attached message as having no header at all: not a shape.)
    public static TheoryData<string> Shapes() => new()
    {
        "attached", // a message/rfc822 part of a multipart
        "top-level", // the message itself is message/rfc822
        "folded", // Content-Type folded before its value
        "commented", // "multipart (x) / mixed", "message (y) / rfc822"
        "nested-twice", // an attached message attached to an attached message
        "crlf",
        "space-before", // after a line of one space
        "from-before", // after an mbox From_ line
        "preamble-dashes", // the boundary written with trailing spaces
        "digest", // a digest's part without a Content-Type is a message (review 32: 613 MB from 5 MB)
        "quoted-pair", // review 33: "multipart (\\)) /mixed" read as multipart) and no boundary
        "non-ascii-boundary", // review 33: a boundary of "\u00e9" never matched
        "cr-boundary", // review 33: boundary=\rb kept the CR
        "odd-names", // fields whose names MimeKit keeps though they are no RFC 5322 names
        "colonless", // review 34: lines without a colon are headers to MimeKit
        "digest-odd-type", // review 34: "Content-Type\x01:" is no Content-Type to MimeKit
        "dashes-in-block", // review 35: "--bX" in a part's header block is a field to MimeKit, not a boundary
        "dashes-at-top", // review 35: in the message's own block, even the boundary itself is
        "padded-name", // review 35: blanks past the kept kilobyte before the colon of a Content-Type
        "padded-multipart", // the same, of a multipart's
        "cte-twice", // review 36: an encoded message is opaque to MimeKit, which reads the first Content-Transfer-Encoding only
        "cte-after-dashes", // the same across a "--" line MimeKit keeps as a field
    };

    private static string Shape(string kind, int fields)
    {
        var nested = Fields(fields);
        var text = kind switch
        {
            "attached" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n{nested}\nbody\n--b--\n",
            "top-level" => $"From: a@example.com\nContent-Type: message/rfc822\n\n{nested}\nbody\n",
            "folded" => $"From: a@example.com\nContent-Type:\n multipart/mixed;\n boundary=b\n\n--b\nContent-Type:\n\tmessage/rfc822\n\n{nested}\nbody\n--b--\n",
            "commented" => $"From: a@example.com\nContent-Type: multipart (x) / mixed; boundary=b\n\n--b\nContent-Type: message (y) / rfc822\n\n{nested}\nbody\n--b--\n",
            "nested-twice" => $"From: a@example.com\nContent-Type: message/rfc822\n\nFrom: b@example.com\nContent-Type: message/rfc822\n\n{nested}\nbody\n",
            "space-before" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n \n{nested}\nbody\n--b--\n",
            "from-before" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nFrom x@y Mon Jan  1 00:00:00 2026\n{nested}\nbody\n--b--\n",
            "preamble-dashes" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b   \nContent-Type: message/rfc822\n\n{nested}\nbody\n--b--\n",
            "quoted-pair" => $"From: a@example.com\nContent-Type: multipart (\\)) /mixed; boundary=b\n\n--b\n{nested}\nbody\n--b--\n",
            "non-ascii-boundary" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=\"\u00e9\"\n\n--\u00e9\n{nested}\nbody\n--\u00e9--\n",
            "cr-boundary" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=\rb\n\n--b\n{nested}\nbody\n--b--\n",
            "odd-names" => $"From: a@example.com\nContent-Type: message/rfc822\n\nFrom: b@example.com\n{nested.Replace("X-F", "X F", StringComparison.Ordinal)}\nbody\n",
            "colonless" => $"From: a@example.com\nContent-Type: message/rfc822\n\nFrom: b@example.com\n{string.Concat(Enumerable.Repeat("a\n", fields))}\nbody\n",
            "digest-odd-type" => $"From: a@example.com\nContent-Type: multipart/digest; boundary=b\n\n--b\nContent-Type\u0001: text/plain\n\n{nested}\nbody\n--b--\n",
            "dashes-in-block" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n--bX\n\n{nested}\nbody\n--b--\n",
            "dashes-at-top" => $"From: a@example.com\nContent-Type: message/rfc822\nContent-Type: multipart/mixed; boundary=b\nX: y\n--b\n\n{nested}\nbody\n",
            "padded-name" => $"From: a@example.com\nContent-Type{new string(' ', 1100)}: message/rfc822\n\n{nested}\nbody\n",
            "padded-multipart" => $"From: a@example.com\nContent-Type{new string('\t', 1100)}: multipart/mixed; boundary=b\n\n--b\n{nested}\nbody\n--b--\n",
            "cte-twice" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\nContent-Transfer-Encoding: base64\n\n{nested}\nbody\n--b--\n",
            "cte-after-dashes" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n--bX\nContent-Transfer-Encoding: base64\n\n{nested}\nbody\n--b--\n",
            "digest" => $"From: a@example.com\nContent-Type: multipart/digest; boundary=b\n\n--b\n\n{nested}\nbody\n--b--\n",
            "crlf" => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n{nested}\nbody\n--b--\n".Replace("\n", "\r\n", StringComparison.Ordinal),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return text;
    }

    private static MimeShape Count(byte[] message, int chunk = int.MaxValue)
    {
        var shape = new MimeShape();
        for (var at = 0; at < message.Length; at += chunk)
        {
            shape.Feed(message.AsSpan(at, Math.Min(chunk, message.Length - at)));
        }

        shape.End();
        return shape;
    }

    // Every header MimeKit keeps: the message's, each part's, each attached message's.
    private static int Parsed(MimeMessage message) => message.Headers.Count + (message.Body is { } body ? Parsed(body) : 0);

    private static int Parsed(MimeEntity entity) => entity.Headers.Count + entity switch
    {
        Multipart multipart => multipart.Sum(Parsed),
        MessagePart { Message: { } inner } => Parsed(inner),
        _ => 0,
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fields_in_parts_are_counted_at_least_as_MimeKit_parses_them_and_past_the_limit_refused(string kind)
    {
        var small = Encoding.UTF8.GetBytes(Shape(kind, 1000));
        using (var message = MimeMessage.Load(new MemoryStream(small)))
        {
            var parsed = Parsed(message);
            Assert.True(parsed > 1000, $"MimeKit parsed {parsed} fields of {kind}: the shape is not what this test means");
            Assert.True(Count(small).Fields >= parsed, $"{kind}: counted {Count(small).Fields}, MimeKit parsed {parsed}");
        }

        Count(Encoding.UTF8.GetBytes(Shape(kind, MimeShape.MaxFields - 10)));
        var refused = Assert.Throws<IntakeException>(() => Count(Encoding.UTF8.GetBytes(Shape(kind, MimeShape.MaxFields))));
        Assert.Equal(IntakeFailure.HeaderTooLarge, refused.Failure);
        Assert.Equal("more than 100,000 header fields in the message and its parts: not taken", refused.Message);
    }

    // Review 34: a name longer than what MimeShape keeps of a line hid its colon.
    [Fact]
    public void Fields_with_names_longer_than_a_kilobyte_are_counted()
    {
        var nested = string.Concat(Enumerable.Range(0, 2000).Select(i => new string('A', 1100) + i + ": x\n"));
        var bytes = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: message/rfc822\n\nFrom: b@example.com\n{nested}\nbody\n");
        using var message = MimeMessage.Load(new MemoryStream(bytes));
        Assert.True(Parsed(message) > 2000);
        Assert.True(Count(bytes).Fields >= Parsed(message), $"counted {Count(bytes).Fields}, MimeKit parsed {Parsed(message)}");
    }

    [Fact]
    public void Continuation_lines_and_lines_that_are_no_field_count_as_lines_and_parts_are_limited()
    {
        var folded = $"From: a@example.com\nContent-Type: message/rfc822\n\n{string.Concat(Enumerable.Repeat("X-Fold: a\n" + string.Concat(Enumerable.Repeat(" b\n", 9)), MimeShape.MaxLines / 10))}X: y\n\nbody\n";
        Assert.Equal("more than 200,000 header lines in the message and its parts: not taken", Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(folded))).Message);
        var noField = $"From: a@example.com\nContent-Type: message/rfc822\n\nFrom: b@example.com\n{string.Concat(Enumerable.Repeat("no field here\n", MimeShape.MaxLines))}\nbody\n";
        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(noField)));

        var parts = $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n{string.Concat(Enumerable.Repeat("--b\n\n", MimeShape.MaxParts + 1))}--b--\n";
        Assert.Equal("more than 50,000 MIME parts: not taken", Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(parts))).Message);

        // A Content-Type too long to read counts as multipart and attached, unless its media type
        // ends (at its ';') within what is kept.
        var longType = $"From: a@example.com\nContent-Type: ({new string('a', 5000)}) text/plain\n\n{Fields(MimeShape.MaxFields)}\nbody\n";
        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(longType)));
        var longParameters = $"From: a@example.com\nContent-Type: text/plain; x=\"{new string('a', 5000)}\"\n\n{Fields(MimeShape.MaxFields)}\nbody\n";
        Assert.Equal(0, Count(Encoding.ASCII.GetBytes(longParameters)).Parts);
        var longMessage = $"From: a@example.com\nContent-Type: message/rfc822; x=\"{new string('a', 5000)}\"\n\n{Fields(MimeShape.MaxFields)}\nbody\n";
        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(longMessage)));
    }

    // Review 36: a message/rfc822 part in base64 (a forward some clients write) is an opaque
    // part to MimeKit; its 3 MB were counted as the attached message's header block and refused.
    [Theory]
    [InlineData("multipart/mixed; boundary=b", "Content-Type: message/rfc822\n")]
    [InlineData("multipart/digest; boundary=b", "")]
    public void An_encoded_attached_message_is_an_opaque_part(string type, string partType)
    {
        var inner = Convert.ToBase64String(Encoding.ASCII.GetBytes(Fields(250_000)), Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal);
        var bytes = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: {type}\n\n--b\n{partType}Content-Transfer-Encoding: Base64\n\n{inner}\n--b--\n");
        var shape = Count(bytes);
        using var message = MimeMessage.Load(new MemoryStream(bytes));
        Assert.True(shape.Fields >= Parsed(message) && shape.Fields < 10, $"counted {shape.Fields}, MimeKit parsed {Parsed(message)}");

        // Not plainly base64 (folded, an encoded word, a second token): counted as a message.
        foreach (var cte in new[] { "\n base64", " =?us-ascii?q?base64?=", " base64 x", " 7bit" })
        {
            var other = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: {type}\n\n--b\n{partType}Content-Transfer-Encoding:{cte}\n\n{Fields(MimeShape.MaxFields)}\n--b--\n");
            Assert.Throws<IntakeException>(() => Count(other));
        }
    }

    // Review 36: MimeKit reads a header block in 4 KiB pieces and checks the piece of a line
    // after each edge as a boundary. Seven-byte fields "X:a--b" in a digest's part put an edge
    // right before one "--b" within seven reads: the part ended there for MimeKit, the next
    // (a message by default) had the fields after the blank line as its headers, which were
    // counted here as body text (a million of them: 777 MB in the daemon).
    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void A_boundary_inside_a_header_line_counts_as_one(string end)
    {
        string Spray(int hidden) => ($"From: a@example.com\nSubject: digest\nContent-Type: multipart/digest; boundary=b\n\n--b\nContent-Type: text/plain\n"
            + string.Concat(Enumerable.Repeat("X:a--b\n", 8000)) + "\n" + Fields(hidden) + "\nbody\n--b--\n").Replace("\n", end, StringComparison.Ordinal);
        var bytes = Encoding.ASCII.GetBytes(Spray(3000));
        using (var message = MimeMessage.Load(new MemoryStream(bytes)))
        {
            Assert.True(Parsed(message) > 3000, $"MimeKit parsed {Parsed(message)}: the spray missed");
            Assert.True(Count(bytes).Fields >= Parsed(message), $"counted {Count(bytes).Fields}, MimeKit parsed {Parsed(message)}");
        }

        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(Spray(MimeShape.MaxFields))));

        // The same "--b" at the end of one long line, past the kilobyte kept of it.
        var tail = $"From: a@example.com\nContent-Type: multipart/digest; boundary=b\n\n--b\nContent-Type: text/plain\nX-Pad: {new string('a', 5000)}--b\n\n{Fields(MimeShape.MaxFields)}\nbody\n--b--\n";
        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(tail)));

        // A "--" that is no boundary of the message, in a part's header line, is only a field.
        string Note(string text) => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nX-Note: {text}\n\nbody\n--b--\n";
        Assert.Equal(Count(Encoding.ASCII.GetBytes(Note("a b"))).Parts, Count(Encoding.ASCII.GetBytes(Note("a -- b --c"))).Parts);
        Assert.Equal(Count(Encoding.ASCII.GetBytes(Note("a b"))).Parts + 1, Count(Encoding.ASCII.GetBytes(Note("a --b"))).Parts);
    }

    // Review 36: MimeKit grows the buffer of the field it reads to just the size needed at each
    // line, copying it: an X- field of 49,900 lines of 83 bytes (4.1 MB) cost 49 s a parse, in
    // inject's own look at the header (Intake.Inspect) and in every runner.
    [Fact]
    public void A_field_folded_over_many_long_lines_is_refused_and_real_long_fields_are_not()
    {
        var fold = " " + new string('a', 81) + "\n";
        var top = $"From: a@example.com\nX-Junk: x\n{string.Concat(Enumerable.Repeat(fold, 49_900))}\nbody\n";
        var refused = Assert.Throws<IntakeException>(() => Intake.Inspect(Encoding.ASCII.GetBytes(top)));
        Assert.Equal("header fields too long, or folded over too many lines, to be parsed in time: not taken", refused.Message);
        Assert.Equal(refused.Message, Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(top))).Message);
        var inPart = $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nX-Junk: x\n{string.Concat(Enumerable.Repeat(fold, 20_000))}\nbody\n--b--\n";
        Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(inPart)));

        // A Cc of 5,000 addresses, one a line; a 1 MB header line; 40,000 short folds.
        var cc = $"From: a@example.com\nCc: {string.Join(",\n ", Enumerable.Range(0, 5000).Select(i => $"Member Number {i} <member{i}@example.com>"))}\n\nbody\n";
        Intake.Inspect(Encoding.ASCII.GetBytes(cc));
        Assert.True(Count(Encoding.ASCII.GetBytes(cc)).HeaderCopyWork < MimeShape.MaxHeaderCopyWork / 2);
        var line = $"From: a@example.com\nX-Long: {new string('a', 1 << 20)}\n\nbody\n";
        Intake.Inspect(Encoding.ASCII.GetBytes(line));
        Count(Encoding.ASCII.GetBytes(line));
        Count(Encoding.ASCII.GetBytes("From: a@example.com\nSubject: a" + string.Concat(Enumerable.Repeat("\n b", 40_000)) + "\n\nbody\n"));
    }

    // Review 36: a Content-Type over the kept kilobyte was read as any kind, so an attachment
    // named in 100 Chinese characters (RFC 2231, as Thunderbird writes it) had its 5 MB of
    // base64 counted as an attached message's header block and the post was refused.
    [Fact]
    public void An_attachment_with_a_long_encoded_name_is_taken()
    {
        var name = string.Concat(Enumerable.Repeat("%E4%B8%AD", 100));
        var base64 = Convert.ToBase64String(new byte[5 << 20], Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal);
        var bytes = Encoding.ASCII.GetBytes($"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\n"
            + $"Content-Type: application/pdf;\n name*0*=utf-8''{name[..450]};\n name*1*={name[450..]}\nContent-Disposition: attachment;\n filename*0*=utf-8''{name[..450]};\n filename*1*={name[450..]}\n"
            + $"Content-Transfer-Encoding: base64\n\n{base64}\n--b--\n");
        var shape = Count(bytes);
        Assert.Equal(3, shape.Parts);
        var oneLine = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
            + $"Content-Type: application/pdf; name*=utf-8''{name}\nContent-Transfer-Encoding: base64\n\n{base64}\n--b--\n");
        Assert.Equal(2, Count(oneLine).Parts);
    }

    [Fact]
    public void Bodies_of_real_size_are_not_header_blocks()
    {
        // Lines that look like fields and lines starting with "--" in bodies: a long plain-text
        // post (an inline diff, a YAML file), the same as an 8bit part of a multipart, and a
        // 6 MB base64 attachment.
        var lines = string.Concat(Enumerable.Range(0, 300_000).Select(i => i % 3 == 0 ? $"--- a/file{i}\n" : $"key{i}: value\n"));
        var plain = Encoding.ASCII.GetBytes($"From: a@example.com\nSubject: patch\n\n{lines}");
        var shape = Count(plain);
        Assert.Equal((2, 0), (shape.Fields, shape.Parts));

        var base64 = Convert.ToBase64String(new byte[6 << 20], Base64FormattingOptions.InsertLineBreaks).Replace("\r\n", "\n", StringComparison.Ordinal);
        var multipart = Encoding.ASCII.GetBytes(
            $"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n{lines}\n--b\n"
            + $"Content-Type: application/pdf; name=\"Message_from_CEO.rfc822.pdf\"\nContent-Transfer-Encoding: base64\n\n{base64}\n--b--\n");
        shape = Count(multipart);
        Assert.True(shape.Fields < 10 && shape.Lines < 20 && shape.Parts == 3, $"{shape.Fields} fields, {shape.Lines} lines, {shape.Parts} parts");
    }

    // Review 32: MimeKit's parse of a folded parameter list is quadratic in its lines (a 3.9 MB
    // Content-Type of 49,000 lines, under the top-level limits, cost 441 s of CPU); a part's
    // header block had no byte limit.
    [Theory]
    [InlineData("From: a@example.com\nContent-Type: text/plain; charset=us-ascii{0}\n\nbody\n")]
    [InlineData("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment{0}\n\nx\n--b--\n")]
    [InlineData("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain{0}\nno field\n\nx\n--b--\n")]
    public void A_Content_field_folded_over_more_than_a_thousand_lines_is_refused(string template)
    {
        string Folded(int lines) => string.Format(System.Globalization.CultureInfo.InvariantCulture, template, string.Concat(Enumerable.Range(0, lines).Select(i => $";\n p{i}=a")));
        Count(Encoding.ASCII.GetBytes(Folded(MimeShape.MaxContentFolds - 1)));
        var refused = Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(Folded(MimeShape.MaxContentFolds + 1))));
        Assert.Equal("a Content- field folded over more than 1,000 lines: not taken", refused.Message);

        // Other fields fold as far as the line limits let them (MimeKit reads them in linear time).
        Count(Encoding.ASCII.GetBytes("From: a@example.com\nSubject: a" + string.Concat(Enumerable.Repeat("\n b", 40_000)) + "\n\nbody\n"));

        var big = $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nX-Big: {new string('a', MimeShape.MaxBlockBytes)}\n\nx\n--b--\n";
        Assert.Equal("a header block larger than 4 MiB in the message or its parts: not taken", Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(big))).Message);
    }

    // Review 35: a Content-Type whose colon stands past the kilobyte kept of its line is one still
    // (190,000 folds of one cost MimeKit 34 s of CPU in the daemon).
    [Fact]
    public void A_Content_field_whose_colon_is_past_the_kept_kilobyte_has_its_folds_counted()
    {
        string Folded(int lines) => $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type{new string(' ', 1100)}: text/plain"
            + string.Concat(Enumerable.Range(0, lines).Select(i => $";\n p{i}=a")) + "\n\nx\n--b--\n";
        Count(Encoding.ASCII.GetBytes(Folded(MimeShape.MaxContentFolds - 1)));
        var refused = Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(Folded(MimeShape.MaxContentFolds + 1))));
        Assert.Equal("a Content- field folded over more than 1,000 lines: not taken", refused.Message);

        // Padded lines without any colon stay what they were: lines folded into the field before.
        var colonless = $"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain;\n"
            + string.Concat(Enumerable.Range(0, MimeShape.MaxContentFolds + 1).Select(i => $"p{i}{new string(' ', 1100)}\n")) + "\nx\n--b--\n";
        refused = Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(colonless)));
        Assert.Equal("a Content- field folded over more than 1,000 lines: not taken", refused.Message);
    }

    // Review 35: MimeKit checks every line starting with "--" against each multipart it is
    // inside; 1,020 nested ones with 1,000-byte boundaries and 32,000 near misses (34 MB, within
    // every other limit) cost it 20.7 s a parse.
    [Fact]
    public void Dash_lines_under_many_multiparts_are_limited_by_the_work_of_checking_them_and_a_big_digest_is_far_from_it()
    {
        var boundary = new string('X', 1000);
        string Nested(int lines) => "From: a@example.com\n"
            + string.Concat(Enumerable.Repeat($"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\n", 1020))
            + string.Concat(Enumerable.Repeat("--" + boundary[1..] + "Y\n", lines));
        Count(Encoding.ASCII.GetBytes(Nested(100)));
        var refused = Assert.Throws<IntakeException>(() => Count(Encoding.ASCII.GetBytes(Nested(2000))));
        Assert.StartsWith("more lines starting with \"--\" than its 1,020 multipart boundaries can be checked against in time", refused.Message, StringComparison.Ordinal);

        // A MIME digest of 1,000 posts, each multipart/alternative: a tenth of the limit or less.
        var digest = new StringBuilder("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/digest; boundary=\"===============1234567890123456789==\"\n\n");
        for (var i = 0; i < 1000; i++)
        {
            var inner = $"==============={i:D19}==";
            digest.Append("--===============1234567890123456789==\n\nFrom: m@example.com\nSubject: post\nMIME-Version: 1.0\n")
                .Append($"Content-Type: multipart/alternative; boundary=\"{inner}\"\n\n--{inner}\nContent-Type: text/plain\n\n")
                .Append(string.Concat(Enumerable.Repeat("text\n-- \nsig\n", 5)))
                .Append($"--{inner}\nContent-Type: text/html\n\n<p>text</p>\n--{inner}--\n");
        }

        digest.Append("--===============1234567890123456789==--\n");
        var shape = Count(Encoding.ASCII.GetBytes(digest.ToString()));
        Assert.True(shape.BoundaryWork < MimeShape.MaxBoundaryWork / 10, $"{shape.BoundaryWork:N0} bytes of boundary checks");
    }

    // A boundary MimeKit may read otherwise than plainly (RFC 2231 pieces, an encoded word, a
    // quoted pair, none at all) makes every line starting with "--" a candidate: never fewer.
    [Theory]
    [InlineData("boundary*0=\"b\"; boundary*1=\"c\"")]
    [InlineData("boundary=\"=?us-ascii?q?bc?=\"")]
    [InlineData("boundary=\"b\\c\"")]
    [InlineData("charset=x")]
    public void A_boundary_not_read_plainly_makes_every_dash_line_a_candidate(string parameters)
    {
        var body = string.Concat(Enumerable.Repeat("--x\nX-A: 1\nX-B: 2\n\n", MimeShape.MaxFields / 2));
        var message = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: multipart/mixed; {parameters}\n\n{body}");
        Assert.Throws<IntakeException>(() => Count(message));
        var plain = Encoding.ASCII.GetBytes($"From: a@example.com\nContent-Type: multipart/mixed; boundary=bc\n\n{body}");
        Assert.Equal(0, Count(plain).Parts);
    }

    [Fact]
    public void Real_mail_from_other_projects_is_counted_at_least_as_MimeKit_parses_it_however_the_bytes_are_cut()
    {
        var corpus = CorpusFiles();
        Assert.True(corpus.Count > 100, $"the corpora were not found ({corpus.Count} files)");
        foreach (var file in corpus)
        {
            var bytes = File.ReadAllBytes(file);
            var whole = Count(bytes);
            using var message = MimeMessage.Load(new MemoryStream(bytes));
            Assert.True(whole.Fields >= Parsed(message), $"{Path.GetFileName(file)}: counted {whole.Fields}, MimeKit parsed {Parsed(message)}");
            foreach (var chunk in new[] { 1, 2, 3, 7, 1000 })
            {
                var cut = Count(bytes, chunk);
                Assert.Equal((whole.Fields, whole.Lines, whole.Parts), (cut.Fields, cut.Lines, cut.Parts));
            }
        }
    }

    private static List<string> CorpusFiles()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var corpora = Path.Combine(dir.FullName, "shared", "corpora");
            if (Directory.Exists(Path.Combine(corpora, "bounces-mailman21")))
            {
                return [.. Directory.GetFiles(Path.Combine(corpora, "bounces-mailman21"), "*.txt"), .. Directory.GetFiles(Path.Combine(corpora, "dkim-mimekit"), "*.msg")];
            }
        }

        return [];
    }
}
