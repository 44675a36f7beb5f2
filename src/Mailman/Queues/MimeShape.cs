// How much MIME structure a message asks its parser for, counted as its bytes stream into the
// queue: header fields and lines in every header block (the message's, its parts', and those of
// messages attached as message/*), and parts. Intake's limits on the top-level header block
// (Intake.CheckHeaderBlock) left the parts' unbounded: a 13 MB post of a million one-line fields
// in a message/rfc822 part cost MimeKit 771 MB in each runner that parses it.
//
// The count never undercounts what MimeKit parses, only over: a line starting with "--" and a
// boundary that any Content-Type of the message declared starts a candidate header block (any
// line starting with "--" does once a multipart's boundary cannot be read plainly: RFC 2231
// pieces, encoded words, quoted pairs, too long, more than 64), and the block after a header
// block whose media type is message/* or */rfc822-headers (or too long to read), or after a
// digest's part without a Content-Type, is counted as the attached message's. Every line of a
// header block but a continuation is a field (a "--" line in one both a field and a boundary; a
// name whose colon stands past the kept kilobyte still that name). The limits are far above real
// mail's. A Content-* field folded over many lines, a part's header block over 4 MiB, and more
// "--" lines than the declared multiparts can be checked against in time (MaxBoundaryWork) and
// fields folded over more lines than MimeKit can copy in time (MaxHeaderCopyWork) are refused
// too: MimeKit's time and memory on them grow faster than their size. Review 36: MimeKit checks
// the piece of a header line after each of its 4 KiB reads as a boundary, so a "--" and a
// boundary anywhere in a header line starts a candidate block as well; a Content-Type value
// longer than what is kept is read by its media type when that ends within it.
namespace Mailman.Queues;

public sealed class MimeShape
{
    /// <summary>The most header fields in all the header blocks of a message (MimeKit keeps each as an object of some hundred bytes).</summary>
    public const int MaxFields = 100_000;

    /// <summary>The most lines in all its header blocks (continuation lines and lines that are no field included).</summary>
    public const int MaxLines = 200_000;

    /// <summary>The most header blocks after the message's own: parts and attached messages (Dovecot's default is 10,000 parts).</summary>
    public const int MaxParts = 50_000;

    /// <summary>
    /// The most lines a Content-* field is folded over: MimeKit's parse of a folded parameter
    /// list grows with the square of its lines (review 32: a Content-Type of 49,000 lines, 3.9
    /// MB, cost 441 s of CPU; 1,000 lines parse in a fraction of a second).
    /// </summary>
    public const int MaxContentFolds = 1_000;

    /// <summary>
    /// The most work MimeKit's boundary checks may take, in bytes compared: it matches every line
    /// starting with "--" against each multipart it is inside (review 35: 1,020 nested
    /// multiparts with 1,000-byte boundaries and 32,000 near-miss lines, 34 MB, cost 20.7 s a
    /// parse). Counted as if every multipart declared so far were open: a line costs its length
    /// times their number, at most the bytes of their Content-Type values. A MIME digest of 1,000
    /// multipart posts needs a twelfth of it (the count grows with the square of the posts: some
    /// 3,400 reach it).
    /// </summary>
    public const long MaxBoundaryWork = 1_000_000_000;

    /// <summary>
    /// The most bytes MimeKit's header parser may copy growing its buffer: it grows the buffer of
    /// the field being read to just the size needed each time it appends to it (once per line,
    /// and once per 4 KiB read of a long line), copying what the field had so far, so a field
    /// folded over L lines costs some L²/2 line lengths (review 36: an X- field of 49,900 lines
    /// of 83 bytes, 4.1 MB, cost 49 s of CPU a parse, 472 s in the daemon). Counted by
    /// <see cref="CopyWork"/> over every header block, the message's own included; a Cc of
    /// 5,000 addresses, one a line, needs 41% of it, a 1 MB header line 13%.
    /// </summary>
    public const long MaxHeaderCopyWork = 1_000_000_000;

    /// <summary>The largest header block of a part or attached message (as the message's own, Intake.MaxHeaderBytes).</summary>
    public const int MaxBlockBytes = Intake.MaxHeaderBytes;

    // The start of a line kept to classify it, and of a Content-Type value to read it.
    private const int Keep = 1024;

    private static readonly System.Buffers.SearchValues<byte> TokenEnd = System.Buffers.SearchValues.Create(" \t\r;(\""u8);

    private readonly byte[] _line = new byte[Keep];
    private readonly byte[] _type = new byte[Keep];
    private int _lineLength;
    private long _lineTotal; // the whole line's length, beyond what is kept
    private bool _colonPastKeep; // a header line's colon, beyond what is kept
    private bool _lineCut;
    private int _typeLength;
    private bool _typeCut;
    private bool _inType;
    private long _typeTotal; // the Content-Type value's whole length, folds included
    private long _declared; // Content-Type values that may be multiparts (each may be open in MimeKit)
    private long _declaredBytes; // their lengths: no boundary of theirs is longer
    private long _boundaryWork;
    private long _copyWork;
    private long _fieldBytes; // the field being read so far, as MimeKit's header buffer holds it
    private long _fieldCapacity; // that buffer's size
    private long _sinceRead; // header bytes since a 4 KiB read of MimeKit's ended
    private bool _dashesPastKeep; // a header line holds "--" past its kept kilobyte
    private byte _lastByte; // the last byte of the line appended so far
    private bool _inBlock = true; // the message's own header block first
    private bool _attached; // this block's Content-Type names message/ or rfc822: the next block is the attached message's
    private bool _multipart;
    private bool _digest; // a multipart/digest was declared: its parts without a Content-Type are messages (RFC 2046 §5.1.5)
    private bool _blockFromBoundary; // this block began after a boundary line (a part's header), not after another block
    private bool _blockHasType;
    private bool _cteSeen; // this block's first Content-Transfer-Encoding was read (MimeKit looks at the first only)
    private bool _cteOpen; // ...and it is the field being read: a fold makes its value unread
    private bool _encoded; // ...and says base64 or quoted-printable, plainly
    private bool _contentField; // the field being read is a Content-* one
    private int _folds; // its lines after the first
    private long _blockBytes;
    private readonly List<byte[]> _boundaries = [];
    private bool _anyDashes; // a boundary could not be read: every "--" line may be one
    private int _bodyKeep = 2; // what a body line needs kept: "--" and the longest boundary
    private bool _ended;
    private readonly int _slack;

    /// <summary>Counts against the limits intake takes a post under.</summary>
    public MimeShape()
    {
    }

    /// <summary>
    /// Counts a post as the list's handlers leave it: what they add (a footer or header part and
    /// the multipart that holds it, DMARC's wrapper, the List-* fields) may take a post intake
    /// took at a count limit over it (review 44: 49,999 parts, footed, were held), so the counts
    /// of fields, lines and parts get <see cref="DecorationSlack"/> more each. The work limits stay.
    /// </summary>
    public static MimeShape ForDecorated() => new(DecorationSlack);

    /// <summary>Fields, lines and parts a list's decoration may add to each of those counts.</summary>
    public const int DecorationSlack = 256;

    private MimeShape(int slack) => _slack = slack;

    public long Fields { get; private set; }

    public long Lines { get; private set; }

    public long Parts { get; private set; }

    /// <summary>Bytes MimeKit's boundary checks may compare, at most (<see cref="MaxBoundaryWork"/>).</summary>
    public long BoundaryWork => _boundaryWork;

    /// <summary>Bytes MimeKit's header parser may copy growing its buffers, at most (<see cref="MaxHeaderCopyWork"/>).</summary>
    public long HeaderCopyWork => _copyWork;

    /// <summary>
    /// What MimeKit copies to take one more header line of <paramref name="length"/> bytes (its
    /// LF included): it appends the line in pieces, one more wherever one of its 4 KiB reads
    /// ends, and each piece that does not fit grows the field's buffer to just the size needed
    /// in 64-byte steps, copying the field so far. <paramref name="fieldBytes"/> and
    /// <paramref name="capacity"/> are the field's so far (0 for a line that starts a field),
    /// <paramref name="sinceRead"/> the bytes since a read ended (where exactly is MimeKit's
    /// business: one every 4 KiB); all advanced past the line.
    /// </summary>
    public static long CopyWork(ref long fieldBytes, ref long capacity, ref long sinceRead, long length)
    {
        long work = 0;
        for (var rest = length + 1; rest > 0;)
        {
            var piece = Math.Min(rest, 4096 - sinceRead);
            var need = fieldBytes + piece;
            if (need > capacity)
            {
                work += fieldBytes;
                capacity = (need + 63) & ~63L;
            }

            fieldBytes = need;
            rest -= piece;
            sinceRead = (sinceRead + piece) & 4095;
        }

        return work;
    }

    /// <summary>Counts the next bytes of the message.</summary>
    /// <exception cref="IntakeException">A limit is passed (HeaderTooLarge).</exception>
    public void Feed(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var newline = bytes.IndexOf((byte)'\n');
            if (newline < 0)
            {
                Append(bytes);
                return;
            }

            Append(bytes[..newline]);
            EndOfLine();
            bytes = bytes[(newline + 1)..];
        }
    }

    /// <summary>Counts more of the current line (<paramref name="piece"/> holds no LF); for a reader that splits lines itself.</summary>
    public void Append(ReadOnlySpan<byte> piece)
    {
        if (_inBlock && (_blockBytes += piece.Length) > MaxBlockBytes)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"a header block larger than {MaxBlockBytes >> 20} MiB in the message or its parts: not taken");
        }

        // A body line is only looked at for a leading "--" and a boundary.
        var take = Math.Clamp((_inBlock ? Keep : _bodyKeep) - _lineLength, 0, piece.Length);
        if (take > 0)
        {
            piece[..take].CopyTo(_line.AsSpan(_lineLength));
            _lineLength += take;
        }

        _lineCut |= piece.Length > take;
        _lineTotal += piece.Length;
        if (_inBlock && piece.Length > take)
        {
            var rest = piece[take..];
            _colonPastKeep = _colonPastKeep || rest.Contains((byte)':');

            // "--" past the kept kilobyte, within this piece or across its start.
            var before = take > 0 ? piece[take - 1] : _lastByte;
            _dashesPastKeep = _dashesPastKeep || rest.IndexOf("--"u8) >= 0 || (before == (byte)'-' && rest[0] == (byte)'-');
        }

        if (!piece.IsEmpty)
        {
            _lastByte = piece[^1];
        }
    }

    /// <summary>The current line ended (its LF).</summary>
    /// <exception cref="IntakeException">A limit is passed (HeaderTooLarge).</exception>
    public void EndOfLine() => EndLine(cutByEnd: false);

    /// <summary>The message ended (a last line without a newline counts).</summary>
    /// <exception cref="IntakeException">A limit is passed (HeaderTooLarge).</exception>
    public void End()
    {
        if (!_ended)
        {
            _ended = true;
            if (_lineLength > 0 || _lineCut)
            {
                EndLine(cutByEnd: true);
            }

            EndType();
        }
    }

    private void EndLine(bool cutByEnd)
    {
        var line = _line.AsSpan(0, _lineLength);
        var cut = _lineCut;
        if (!cut && !cutByEnd && line.Length > 0 && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        var empty = line.IsEmpty && !cut;
        var dashes = IsBoundary(line);
        var total = _lineTotal;
        var colonPastKeep = _colonPastKeep;
        var dashesPastKeep = _dashesPastKeep;
        _lineLength = 0;
        _lineTotal = 0;
        _colonPastKeep = false;
        _dashesPastKeep = false;
        _lastByte = 0;
        _lineCut = false;
        if (_declared > 0 && line.StartsWith("--"u8)
            && (_boundaryWork += Math.Min(_declared * total, _declaredBytes)) > MaxBoundaryWork)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more lines starting with \"--\" than its {_declared:N0} multipart boundaries can be checked against in time: not taken");
        }

        if (!_inBlock)
        {
            if (dashes)
            {
                StartBlock(fromBoundary: true);
            }

            return;
        }

        if (empty)
        {
            EndType();
            // An attached message that is base64 or quoted-printable is an opaque part to
            // MimeKit (ParserOptions.CreateEntity: a MessagePart only when not encoded), its
            // content only scanned for boundaries (review 36: a forwarded message of 3 MB in
            // base64 was counted as one header block of 4 MiB and the post refused).
            if ((_attached || (_digest && _blockFromBoundary && !_blockHasType)) && !_encoded)
            {
                StartBlock(fromBoundary: false);
            }
            else
            {
                _inBlock = false;
            }

            return;
        }

        if (++Lines > MaxLines + _slack)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more than {MaxLines + _slack:N0} header lines in the message and its parts: not taken");
        }

        // What MimeKit copies for this line: a continuation adds to the field before it; any
        // other line is a header of its own to MimeKit, colon or not.
        if (line.IsEmpty || line[0] is not ((byte)' ' or (byte)'\t'))
        {
            _fieldBytes = _fieldCapacity = 0;
        }

        if ((_copyWork += CopyWork(ref _fieldBytes, ref _fieldCapacity, ref _sinceRead, total)) > MaxHeaderCopyWork)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, "header fields too long, or folded over too many lines, to be parsed in time: not taken");
        }

        if (dashes)
        {
            // A boundary here ends the block for MimeKit only when it is exactly one of a
            // multipart it is inside; otherwise the line is a field of this block, which goes on
            // (review 35: "--bX" under "Content-Type: message/rfc822" cleared the attached
            // message, and a million fields in it went uncounted). Both are counted: the line as
            // a field, and the new block as still this one's for what follows its blank line.
            CountField();
            EndType();
            ContinueBlock();
            return;
        }

        Field(line, cut, total, colonPastKeep);

        // MimeKit reads a header block in 4 KiB pieces and checks the piece of a line after
        // each edge as a boundary (review 36: "X:a--b" lines, one of which an edge splits
        // before its "--b", ended a digest's part there, and a million fields after it went
        // uncounted as body text): a "--" and a boundary anywhere in a header line (any "--"
        // past the kept kilobyte) also starts a block, as the line's own does above, once the
        // line was read as a field of this one (when no read ends in it). A Content-Type it
        // leaves unfinished, before its ';', counts as any kind: its folds may follow.
        if (_multipart && (dashesPastKeep || HasInnerBoundary(line, cut)))
        {
            _typeCut |= _inType;
            EndType();
            ContinueBlock();
        }
    }

    // A new candidate block that MimeKit may still read as this one: it keeps what this one
    // made of the next (an attached message), and a Content-Transfer-Encoding this one had
    // (MimeKit reads the first) leaves it never counted as encoded.
    private void ContinueBlock()
    {
        var attached = _attached;
        var cteSeen = _cteSeen;
        StartBlock(fromBoundary: true);
        _attached = attached;
        _cteSeen = cteSeen;
    }

    // A header line that is no boundary line: a fold of the field before it, or a field.
    private void Field(ReadOnlySpan<byte> line, bool cut, long total, bool colonPastKeep)
    {
        if (line.Length > 0 && line[0] is (byte)' ' or (byte)'\t')
        {
            Fold();
            _encoded &= !_cteOpen;
            if (_inType)
            {
                _typeTotal += total;
                AppendType(line, cut);
            }

            return;
        }

        EndType();
        // Every line is a field: MimeKit keeps "X F0: x" (review 33), a line without a colon and
        // one whose name is longer than what is kept here (review 34) as headers too. One
        // without a colon also counts as a fold of the field before it.
        CountField();
        var colon = line.IndexOf((byte)':');
        if (colon < 0 && colonPastKeep && line.TrimEnd(" \t"u8) is var padded && padded.Length < line.Length && padded.IndexOfAny(" \t"u8) < 0)
        {
            // A name, then blanks past the kept kilobyte, then its colon: MimeKit reads
            // "Content-Type<1,100 spaces>: message/rfc822" as a Content-Type (review 35: a
            // million fields hidden, and 190,000 folds of a Content-* field uncounted).
            StartField(padded, total);
            _typeCut |= _inType; // its value was not seen: any kind
            _encoded &= !_cteOpen; // nor this one's: not encoded

            return;
        }

        if (colon < 0)
        {
            Fold();
            _encoded &= !_cteOpen;
            return;
        }

        // The name as MimeKit matches it: review 34's "Content-Type\x01:" is no Content-Type to
        // MimeKit (a digest's part stays a message), so it must not be one here.
        StartField(line[..colon].TrimEnd(" \t"u8), total - (colon + 1));
        if (_cteOpen)
        {
            _encoded = !cut && IsEncoding(line[(colon + 1)..]);
        }

        if (_inType)
        {
            AppendType(line[(colon + 1)..], cut);
        }
    }

    private void CountField()
    {
        if (++Fields > MaxFields + _slack)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more than {MaxFields + _slack:N0} header fields in the message and its parts: not taken");
        }
    }

    // valueBytes: the length of the value on the field's first line (a Content-Type's counts
    // toward the longest boundary it may declare).
    private void StartField(ReadOnlySpan<byte> name, long valueBytes)
    {
        _contentField = name.Length >= 8 && System.Text.Ascii.EqualsIgnoreCase(name[..8], "Content-"u8);
        _folds = 0;
        _cteOpen = !_cteSeen && System.Text.Ascii.EqualsIgnoreCase(name, "Content-Transfer-Encoding"u8);
        _cteSeen |= _cteOpen;
        if (System.Text.Ascii.EqualsIgnoreCase(name, "Content-Type"u8))
        {
            _blockHasType = true;
            _inType = true;
            _typeLength = 0;
            _typeCut = false;
            _typeTotal = valueBytes;
        }
    }

    // A value longer than what is kept (or from a line longer than that) is cut.
    private void AppendType(ReadOnlySpan<byte> value, bool cut)
    {
        var take = Math.Min(Keep - _typeLength, value.Length);
        value[..take].CopyTo(_type.AsSpan(_typeLength));
        _typeLength += take;
        _typeCut |= cut || value.Length > take;
    }

    // What a Content-Type said, read loosely (any comment or spacing MimeKit reads past): a
    // value too long to keep counts as both multipart and attached.
    private void EndType()
    {
        if (!_inType)
        {
            return;
        }

        _inType = false;
        var value = _type.AsSpan(0, _typeLength);
        var (type, subtype, plain, whole) = MediaType(value);

        // A value longer than what is kept is still read by its media type when that ends (at
        // its ';') within the kept part: review 36's attachment with a 100-character Chinese
        // file name (RFC 2231, 1.1 KB) was read as "any kind", its 5 MB of base64 as an attached
        // message's header block, and the post refused.
        if ((_typeCut && !whole) || !plain)
        {
            // Read otherwise than plainly (review 33: "multipart (\)) /mixed", a quoted pair in a
            // comment, hid a million fields): any kind, any boundary.
            _multipart = _digest = _anyDashes = _attached = true;
            Declare();
            return;
        }

        if (type == "multipart")
        {
            Declare();
            _multipart = true;
            _digest |= subtype == "digest";
            ReadBoundaries(value);
        }

        // Not "message" anywhere in the value: review 32's attachment named Message_from_CEO.pdf
        // had its 11 MB of base64 counted as header lines and was refused.
        if (type == "message" || subtype.Contains("rfc822", StringComparison.Ordinal))
        {
            _attached = true;
        }
    }

    // A multipart MimeKit may open: every later line starting with "--" is checked against it.
    private void Declare()
    {
        _declared++;
        _declaredBytes += _typeTotal;
    }

    private void Fold()
    {
        if (_contentField && ++_folds > MaxContentFolds)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"a Content- field folded over more than {MaxContentFolds:N0} lines: not taken");
        }
    }

    // The media type before the first ';', lower case, read past spaces, quotes and comments
    // ("message (x) / rfc822" is message/rfc822 to MimeKit too). Not plain: a backslash, a
    // byte that is not printable ASCII, or a type or subtype that is not a token.
    private static (string Type, string Subtype, bool Plain, bool Whole) MediaType(ReadOnlySpan<byte> value)
    {
        var text = new System.Text.StringBuilder();
        var depth = 0;
        var plain = true;
        var whole = false;
        foreach (var b in value)
        {
            if (b == (byte)'\\' || b >= 0x7F || (b < 0x20 && b is not ((byte)'\t' or (byte)'\r')))
            {
                plain = false;
            }

            if (depth > 0)
            {
                depth += b == (byte)'(' ? 1 : b == (byte)')' ? -1 : 0;
                continue;
            }

            if (b == (byte)'(')
            {
                depth = 1;
            }
            else if (b == (byte)';' || text.Length > 200)
            {
                whole = b == (byte)';';
                break;
            }
            else if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'"'))
            {
                text.Append(char.ToLowerInvariant((char)b));
            }
        }

        var media = text.ToString();
        var slash = media.IndexOf('/', StringComparison.Ordinal);
        var (type, subtype) = slash < 0 ? (media, "") : (media[..slash], media[(slash + 1)..]);
        plain &= IsToken(type) && (slash < 0 || IsToken(subtype));
        return (type, subtype, plain, whole);
    }

    // RFC 2045 token characters (an empty type is MimeKit's text/plain: plain too).
    private static bool IsToken(string s)
    {
        foreach (var c in s)
        {
            if (c is <= ' ' or >= (char)0x7F or '(' or ')' or '<' or '>' or '@' or ',' or ';' or ':' or '\\' or '"' or '/' or '[' or ']' or '?' or '=')
            {
                return false;
            }
        }

        return true;
    }

    private void StartBlock(bool fromBoundary)
    {
        if (++Parts > MaxParts + _slack)
        {
            throw new IntakeException(IntakeFailure.HeaderTooLarge, $"more than {MaxParts + _slack:N0} MIME parts: not taken");
        }

        _inBlock = true;
        _attached = false;
        _inType = false;
        _blockFromBoundary = fromBoundary;
        _blockHasType = false;
        _contentField = false;
        _blockBytes = 0;
        _fieldBytes = _fieldCapacity = 0;
        _cteSeen = _cteOpen = _encoded = false;
    }

    /// <summary>A write-only stream that counts what is written and passes it on to <paramref name="inner"/>.</summary>
    public Stream Watch(Stream inner) => new Watching(this, inner);

    // Whether a line may be a boundary of a multipart of this message (compared as a prefix and
    // ignoring case: more than MimeKit takes, never less).
    private bool IsBoundary(ReadOnlySpan<byte> line)
    {
        if (!_multipart || !line.StartsWith("--"u8))
        {
            return false;
        }

        if (_anyDashes)
        {
            return true;
        }

        foreach (var b in _boundaries)
        {
            if (line.Length - 2 >= b.Length && System.Text.Ascii.EqualsIgnoreCase(line.Slice(2, b.Length), b))
            {
                return true;
            }
        }

        return false;
    }

    // A Content-Transfer-Encoding value MimeKit surely reads as base64 or quoted-printable: that
    // token alone, in printable ASCII without an encoded word (anything else reads as not
    // encoded here, which counts more).
    private static bool IsEncoding(ReadOnlySpan<byte> value)
    {
        var token = value.Trim(" \t\r"u8);
        return token.IndexOfAnyExceptInRange((byte)'!', (byte)'~') < 0
            && (System.Text.Ascii.EqualsIgnoreCase(token, "base64"u8) || System.Text.Ascii.EqualsIgnoreCase(token, "quoted-printable"u8));
    }

    // A "--" after the line's start followed by a boundary of this message (or the start of one,
    // where the kept part of a longer line ends); any "--" once a boundary could not be read.
    private bool HasInnerBoundary(ReadOnlySpan<byte> line, bool cut)
    {
        for (var at = 1; at + 1 < line.Length; at++)
        {
            var next = line[at..].IndexOf("--"u8);
            if (next < 0)
            {
                return false;
            }

            at += next;
            if (_anyDashes)
            {
                return true;
            }

            var rest = line[(at + 2)..];
            foreach (var b in _boundaries)
            {
                if (rest.Length >= b.Length
                    ? System.Text.Ascii.EqualsIgnoreCase(rest[..b.Length], b)
                    : cut && System.Text.Ascii.EqualsIgnoreCase(rest, b.AsSpan(0, rest.Length)))
                {
                    return true;
                }
            }
        }

        return false;
    }

    // Every boundary= in a multipart's Content-Type value, read plainly (a token or a quoted
    // string without quoted pairs); anything else makes every "--" line a boundary.
    private void ReadBoundaries(ReadOnlySpan<byte> value)
    {
        var found = false;
        for (var at = IndexOf(value, "boundary"u8, 0); at >= 0 && !_anyDashes; at = IndexOf(value, "boundary"u8, at + 1))
        {
            var rest = value[(at + "boundary".Length)..].TrimStart(" \t\r"u8);
            if (rest.StartsWith("*"u8))
            {
                _anyDashes = true; // RFC 2231 pieces or charset
                break;
            }

            if (!rest.StartsWith("="u8))
            {
                continue;
            }

            rest = rest[1..].TrimStart(" \t\r"u8);
            ReadOnlySpan<byte> boundary;
            if (rest.StartsWith("\""u8))
            {
                var close = rest[1..].IndexOf((byte)'"');
                boundary = close < 0 ? [] : rest[1..(close + 1)];
                _anyDashes |= close < 0 || boundary.Contains((byte)'\\');
            }
            else
            {
                var end = rest.IndexOfAny(TokenEnd);
                boundary = end < 0 ? rest : rest[..end];
            }

            // Only printable ASCII (and spaces) is compared: review 33's "\u00e9" and "\rb" never matched.
            if (_typeCut || boundary.IsEmpty || boundary.Length > Keep - 2 || IndexOf(boundary, "=?"u8, 0) >= 0 || _boundaries.Count >= 64
                || boundary.IndexOfAnyExceptInRange((byte)' ', (byte)'~') >= 0)
            {
                _anyDashes = true;
                break;
            }

            found = true;
            _boundaries.Add(boundary.ToArray());
            _bodyKeep = Math.Max(_bodyKeep, boundary.Length + 2);
        }

        if (!found)
        {
            _anyDashes = true;
        }
    }

    private static int IndexOf(ReadOnlySpan<byte> value, ReadOnlySpan<byte> word, int from)
    {
        for (var i = from; i + word.Length <= value.Length; i++)
        {
            if (System.Text.Ascii.EqualsIgnoreCase(value.Slice(i, word.Length), word))
            {
                return i;
            }
        }

        return -1;
    }

    private sealed class Watching(MimeShape shape, Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            shape.Feed(buffer);
            inner.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
