using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;
using Coldmind.Quantization;

namespace Coldmind.Formats;

/// <summary>GGUF token types (tokenizer.ggml.token_type), as llama.cpp's llama_token_type.</summary>
public enum TokenType { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>The types a GGUF metadata value can have (gguf.h).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// One metadata value: a scalar (byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long,
/// double) or, for <see cref="GgufValueType.Array"/>, a typed .NET array of <see cref="ElementType"/>.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Array(GgufValueType elementType, System.Array values) => new(GgufValueType.Array, values, elementType);

    /// <summary>The value as a whole number, for any integer type (e.g. counts stored as u32 by one writer and i32 by another).</summary>
    public long AsInteger() => Value switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, ulong v => checked((long)v), long v => v,
        _ => throw new ColdmindException($"GGUF value of type {Type} is not an integer."),
    };

    public override string ToString() => Value switch
    {
        string s => s,
        System.Array a => $"[{a.Length} × {ElementType}]",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}

/// <summary>A tensor's entry in a GGUF file. <see cref="Dims"/> are in ggml order: Dims[0] is the row length.</summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type, long Offset)
{
    public long Count => Dims.Aggregate(1L, (a, b) => a * b);
    public long ByteCount => GgmlTypes.Traits(Type).ByteCount(Count);
}

/// <summary>
/// A GGUF v2/v3 file (llama.cpp's format), memory-mapped: metadata and tensor infos are parsed on open,
/// tensor data is read in place (zero-copy) from the mapping. Files over 2 GiB work: only each tensor,
/// not the file, has to fit a span. Every count, length and offset is checked against the file size
/// before anything is allocated, so a corrupt or hostile file gives a <see cref="ColdmindException"/>.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const int DefaultAlignment = 32;
    private const int MaxDims = 4, MaxNameBytes = 63;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _length;
    private readonly Dictionary<string, GgufTensorInfo> _byName;

    public string Path { get; }
    public uint Version { get; }
    public int Alignment { get; }
    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }
    /// <summary>Byte offset of the (aligned) data section; tensor offsets are relative to it.</summary>
    public long DataOffset { get; }

    private GgufFile(string path)
    {
        Path = path;
        _length = new FileInfo(path).Length;
        if (_length < 24) throw new ColdmindException($"'{path}' is not a GGUF file: {_length} bytes is shorter than the header.");
        try
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ColdmindException($"Cannot read '{path}': {e.Message}", e);
        }
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try
        {
            var r = new Reader(new ReadOnlySpan<byte>(_base, (int)Math.Min(_length, int.MaxValue)), path);
            if (r.U32() != Magic) throw new ColdmindException($"'{path}' is not a GGUF file (wrong magic bytes).");
            Version = r.U32();
            if (Version is < 2 or > 3) throw new ColdmindException($"'{path}' is GGUF version {Version}; versions 2 and 3 are supported.");
            long tensorCount = r.Count(25, "tensor count");   // a tensor info takes at least 25 bytes
            long kvCount = r.Count(13, "metadata count");      // a key-value pair takes at least 13 bytes
            var metadata = new List<KeyValuePair<string, GgufValue>>();
            var keys = new HashSet<string>();
            for (long i = 0; i < kvCount; i++)
            {
                string key = r.String("metadata key");
                if (!keys.Add(key)) throw new ColdmindException($"'{path}': duplicate metadata key '{key}'.");
                metadata.Add(new(key, r.Value(key)));
            }
            Metadata = metadata;
            Alignment = DefaultAlignment;
            if (keys.Contains("general.alignment"))
            {
                var a = metadata.First(kv => kv.Key == "general.alignment").Value;
                if (a.Type != GgufValueType.UInt32 || (uint)a.Value == 0 || ((uint)a.Value & ((uint)a.Value - 1)) != 0 || (uint)a.Value > 1 << 20)
                    throw new ColdmindException($"'{path}': general.alignment must be a u32 power of two, got {a}.");
                Alignment = (int)(uint)a.Value;
            }
            var tensors = new List<GgufTensorInfo>();
            _byName = [];
            for (long i = 0; i < tensorCount; i++)
            {
                string name = r.String("tensor name");
                if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes) throw new ColdmindException($"'{path}': tensor name '{name}' is longer than {MaxNameBytes} bytes.");
                uint nDims = r.U32();
                if (nDims > MaxDims) throw new ColdmindException($"'{path}': tensor '{name}' has {nDims} dimensions; at most {MaxDims}.");
                var dims = new long[nDims];
                long count = 1;
                for (int d = 0; d < nDims; d++)
                {
                    dims[d] = r.I64();
                    if (dims[d] < 0 || (dims[d] > 0 && count > long.MaxValue / dims[d]))
                        throw new ColdmindException($"'{path}': tensor '{name}' has an invalid shape [{string.Join(", ", dims.Take(d + 1))}].");
                    count *= dims[d];
                }
                uint typeId = r.U32();
                if (!Enum.IsDefined((GgmlType)typeId)) throw new ColdmindException($"'{path}': tensor '{name}' has unknown type id {typeId}.");
                var info = new GgufTensorInfo(name, dims, (GgmlType)typeId, r.I64());
                if (!_byName.TryAdd(name, info)) throw new ColdmindException($"'{path}': duplicate tensor name '{name}'.");
                tensors.Add(info);
            }
            DataOffset = (r.Position + Alignment - 1) / Alignment * Alignment;
            foreach (var t in tensors)
            {
                if (t.Offset < 0 || t.Offset % Alignment != 0)
                    throw new ColdmindException($"'{path}': tensor '{t.Name}' has offset {t.Offset}, not a multiple of the alignment {Alignment}.");
                long bytes = t.ByteCount, room = _length - DataOffset; // compared without sums that could overflow
                if (t.Offset > room || bytes > room - t.Offset)
                    throw new ColdmindException($"'{path}' is truncated or corrupt: tensor '{t.Name}' needs bytes {t.Offset}..{t.Offset + bytes} of a data section of {_length - DataOffset} bytes.");
            }
            Tensors = tensors;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new ColdmindException($"File not found: '{path}'.");
        return new GgufFile(path);
    }

    public GgufTensorInfo Tensor(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new ColdmindException($"'{Path}' has no tensor '{name}'.");

    public GgufValue? Get(string key) => Metadata.FirstOrDefault(kv => kv.Key == key).Value;

    /// <summary>The tensor's packed bytes, in place in the mapping (valid until the file is disposed).</summary>
    public ReadOnlySpan<byte> Data(GgufTensorInfo t)
    {
        long bytes = t.ByteCount;
        if (bytes > int.MaxValue) throw new ColdmindException($"Tensor '{t.Name}' has {bytes} bytes; read it in rows.");
        return new ReadOnlySpan<byte>(_base + DataOffset + t.Offset, (int)bytes);
    }

    /// <summary>The tensor's first byte in the mapping, for tensors of any size (valid until the file is disposed).</summary>
    public byte* Pointer(GgufTensorInfo t) => _base + DataOffset + t.Offset;

    /// <summary>
    /// Tells the kernel this process is done with the tensor's pages (madvise DONTNEED on Linux): they leave the
    /// resident set now instead of when memory runs short, e.g. after a tensor was repacked into its own memory.
    /// A later read maps them in again from the page cache; elsewhere this does nothing.
    /// </summary>
    public void Release(GgufTensorInfo t)
    {
        if (!OperatingSystem.IsLinux()) return;
        const long Page = 4096;
        long start = (long)(_base + DataOffset + t.Offset), end = start + t.ByteCount;
        long first = (start + Page - 1) / Page * Page, last = end / Page * Page;
        if (last > first) _ = Madvise((nint)first, (nuint)(last - first), 4 /* MADV_DONTNEED */);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise")]
    private static extern int Madvise(nint address, nuint length, int advice);

    /// <summary>The tensor's values as float32 (dequantized).</summary>
    public float[] ReadFloats(GgufTensorInfo t) => GgmlTypes.Traits(t.Type).Dequantize(Data(t), checked((int)t.Count));

    public void Dispose()
    {
        if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }

    /// <summary>A bounds-checked little-endian cursor; running past the end names the file and what was being read.</summary>
    private ref struct Reader(ReadOnlySpan<byte> data, string path)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        public int Position { get; private set; }

        private ReadOnlySpan<byte> Take(long n, string what)
        {
            if (n < 0 || n > _data.Length - Position)
                throw new ColdmindException($"'{path}' is truncated or corrupt: {what} at byte {Position} needs {n} bytes, {_data.Length - Position} remain.");
            var s = _data.Slice(Position, (int)n);
            Position += (int)n;
            return s;
        }

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "a u32"));
        public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8, "an i64"));

        /// <summary>A count whose items take at least <paramref name="minItemBytes"/> each: larger than the rest of the file is corrupt.</summary>
        public long Count(int minItemBytes, string what)
        {
            long n = I64();
            if (n < 0 || n > (_data.Length - Position) / minItemBytes)
                throw new ColdmindException($"'{path}' is corrupt: {what} {n} cannot fit in the remaining {_data.Length - Position} bytes.");
            return n;
        }

        public string String(string what)
        {
            long n = I64();
            try { return Encoding.UTF8.GetString(Take(n, what)); }
            catch (DecoderFallbackException) { throw new ColdmindException($"'{path}': {what} is not valid UTF-8."); }
        }

        public GgufValue Value(string key)
        {
            var type = (GgufValueType)U32();
            if (type != GgufValueType.Array) return new GgufValue(type, Scalar(type, key));
            var element = (GgufValueType)U32();
            if (element == GgufValueType.Array) throw new ColdmindException($"'{path}': metadata '{key}' is an array of arrays, which GGUF readers do not accept.");
            long n = Count(element == GgufValueType.String ? 8 : Size(element, key), $"length of array '{key}'");
            var values = System.Array.CreateInstance(ClrType(element), n);
            for (long i = 0; i < n; i++) values.SetValue(Scalar(element, key), i);
            return GgufValue.Array(element, values);
        }

        private static Type ClrType(GgufValueType t) => t switch
        {
            GgufValueType.UInt8 => typeof(byte), GgufValueType.Int8 => typeof(sbyte), GgufValueType.UInt16 => typeof(ushort),
            GgufValueType.Int16 => typeof(short), GgufValueType.UInt32 => typeof(uint), GgufValueType.Int32 => typeof(int),
            GgufValueType.Float32 => typeof(float), GgufValueType.Bool => typeof(bool), GgufValueType.String => typeof(string),
            GgufValueType.UInt64 => typeof(ulong), GgufValueType.Int64 => typeof(long), _ => typeof(double),
        };

        private readonly int Size(GgufValueType t, string key) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
            _ => throw new ColdmindException($"'{path}': metadata '{key}' has unknown value type {(uint)t}."),
        };

        private object Scalar(GgufValueType t, string key)
        {
            if (t == GgufValueType.String) return String($"string value of '{key}'");
            var b = Take(Size(t, key), $"value of '{key}'");
            return t switch
            {
                GgufValueType.UInt8 => b[0],
                GgufValueType.Int8 => (sbyte)b[0],
                GgufValueType.Bool => b[0] != 0,
                GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
                GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
                GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                GgufValueType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
                GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
                _ => (object)BinaryPrimitives.ReadDoubleLittleEndian(b),
            };
        }
    }
}

/// <summary>
/// Writes GGUF v3 as llama.cpp reads it: header, metadata, tensor infos, then the data section aligned to
/// general.alignment (default 32) with every tensor starting on an aligned offset, in the order added.
/// The file is written to a temporary name and renamed, so a failure leaves no partial file.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<(string Name, long[] Dims, GgmlType Type, byte[] Data)> _tensors = [];

    public GgufWriter Set(string key, GgufValue value)
    {
        int i = _metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0) _metadata[i] = new(key, value);
        else _metadata.Add(new(key, value));
        return this;
    }

    /// <summary>Adds a tensor; <paramref name="dims"/> in ggml order (dims[0] = row length), data already packed as <paramref name="type"/>.</summary>
    public GgufWriter AddTensor(string name, long[] dims, GgmlType type, byte[] data)
    {
        var traits = GgmlTypes.Traits(type);
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (dims.Length > 4 || (dims.Length > 0 && dims[0] % traits.BlockSize != 0))
            throw new ColdmindException($"Tensor '{name}' [{string.Join(", ", dims)}] cannot be stored as {traits.Name}: rows must be whole blocks of {traits.BlockSize}.");
        if (data.Length != traits.ByteCount(count))
            throw new ColdmindException($"Tensor '{name}': {data.Length} bytes given, {traits.Name} [{string.Join(", ", dims)}] needs {traits.ByteCount(count)}.");
        if (_tensors.Any(t => t.Name == name)) throw new ColdmindException($"Two tensors are named '{name}'.");
        _tensors.Add((name, dims, type, data));
        return this;
    }

    public void Write(string path)
    {
        int alignment = _metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value?.Value is uint a ? (int)a : GgufFile.DefaultAlignment;
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(GgufFile.Magic);
            w.Write(3u);
            w.Write((long)_tensors.Count);
            w.Write((long)_metadata.Count);
            foreach (var (key, value) in _metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                if (value.Type == GgufValueType.Array)
                {
                    var values = (Array)value.Value;
                    w.Write((uint)value.ElementType);
                    w.Write((long)values.Length);
                    foreach (var v in values) WriteScalar(w, value.ElementType, v!);
                }
                else WriteScalar(w, value.Type, value.Value);
            }
            long offset = 0;
            foreach (var t in _tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dims.Length);
                foreach (long d in t.Dims) w.Write(d);
                w.Write((uint)t.Type);
                w.Write(offset);
                offset += Pad(t.Data.Length, alignment);
            }
            w.Flush();
            PadTo(stream, alignment);
            foreach (var t in _tensors)
            {
                stream.Write(t.Data);
                PadTo(stream, alignment);
            }
        });
    }

    private static long Pad(long n, int alignment) => (n + alignment - 1) / alignment * alignment;

    private static void PadTo(Stream s, int alignment)
    {
        long padding = Pad(s.Position, alignment) - s.Position;
        for (long i = 0; i < padding; i++) s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((long)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write(Convert.ToByte(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int8: w.Write(Convert.ToSByte(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.UInt16: w.Write(Convert.ToUInt16(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int16: w.Write(Convert.ToInt16(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.UInt32: w.Write(Convert.ToUInt32(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int32: w.Write(Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Float32: w.Write(Convert.ToSingle(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write(Convert.ToUInt64(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int64: w.Write(Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Float64: w.Write(Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture)); break;
            default: throw new ColdmindException($"Cannot write a GGUF value of type {type}.");
        }
    }
}
