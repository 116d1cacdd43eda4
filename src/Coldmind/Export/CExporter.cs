using System.Globalization;
using System.Text;
using Coldmind.Quantization;

namespace Coldmind.Export;

/// <summary>What to export: the float program or the integer one, and the examples behind it.</summary>
/// <param name="Calibration">
/// examples × inputs that set the integer program's activation scales (needed for <see cref="Fpu.None"/>)
/// </param>
/// <param name="Example">one input and its label, embedded in example.c</param>
public sealed record CExportOptions(Fpu Fpu, float[]? Calibration = null, (float[] Input, int Label)? Example = null);

/// <summary>
/// Writes a classifier as a self-contained C99 library for a microcontroller: model.h (the API, the shapes, the
/// arena size), model.c (the weights as const arrays in flash, the kernels, one static arena; no heap, no
/// recursion, no VLAs), example.c and README.md. Each layer is stored in whichever of its forms is smaller:
/// float dense or CSR; codes packed at their bits, dense or CSR with a start per scale group; trits packed four a
/// byte, or the column lists of the +1 and −1 trits of each row. Ternary rows are summed by additions and
/// subtractions only. With <see cref="Fpu.None"/> the network runs in integers (<see cref="FixedPointPlan"/>).
/// </summary>
public sealed class CExporter
{
    private readonly ExportGraph _graph;
    private readonly CExportOptions _options;
    private readonly StringBuilder _weights = new(), _layers = new();
    private readonly SortedSet<string> _helpers = new(StringComparer.Ordinal);
    private readonly List<string> _storage = [];

    public FixedPointPlan? Plan { get; }
    /// <summary>The layers the C code runs (float layers rounded to int8 codes for <see cref="Fpu.None"/>).</summary>
    public IReadOnlyList<ExportLayer> Layers => Plan?.Layers ?? _graph.Layers;
    public long ArenaBytes { get; private set; }
    /// <summary>Bytes of the weight arrays as written (the part of flash the model itself fills).</summary>
    public long WeightBytes { get; private set; }
    /// <summary>Each layer's kind, storage and bytes, for the README and the report.</summary>
    public IReadOnlyList<string> Storage => _storage;

    public CExporter(ExportGraph graph, CExportOptions options)
    {
        (_graph, _options) = (graph, options);
        foreach (var layer in graph.Layers)
            if (layer.Columns > ushort.MaxValue + 1 && layer is not ConvLayer)
                throw new ColdmindException(
                    $"A {layer.Kind} layer with {layer.Columns} inputs: the C export indexes columns in 16 bits "
                        + "(at most 65 536).");
        if (options.Fpu == Fpu.None) Plan = FixedPointPlan.Build(graph, options.Calibration ?? []);
    }

    /// <summary>model.h, model.c, example.c and README.md by name.</summary>
    public IReadOnlyDictionary<string, string> Generate()
    {
        _weights.Clear(); _layers.Clear(); _helpers.Clear(); _storage.Clear();
        WeightBytes = 0;
        bool integer = Plan != null;
        string t = integer ? "int8_t" : "float";
        // Activations ping-pong between two buffers; the first layer reads the input, the last writes the scores.
        int[] width = [0, 0];
        for (int l = 0; l + 1 < Layers.Count; l++) width[l % 2] = Math.Max(width[l % 2], Layers[l].Rows);
        int scratch = Layers.OfType<TernaryLayer>().Select(x => x.Columns).DefaultIfEmpty(0).Max();
        int unit = integer ? 1 : 4;
        // cm_predict_int8 (float program) or cm_predict (integer program) convert the input here
        int inputSlot = Layers[0].Columns;
        int offsetB = width[0], offsetScratch = offsetB + width[1];
        int offsetInput = offsetScratch + (scratch + unit - 1) / unit;
        int arenaElements = Math.Max(1, offsetInput + inputSlot);
        ArenaBytes = (long)arenaElements * unit;
        var calls = new StringBuilder();
        for (int l = 0; l < Layers.Count; l++)
        {
            bool last = l == Layers.Count - 1;
            string input = l == 0 ? "input" : $"cm_arena + {((l - 1) % 2 == 0 ? 0 : offsetB)}";
            string output = last ? "scores" : $"cm_arena + {(l % 2 == 0 ? 0 : offsetB)}";
            EmitLayer(l, last, integer, offsetScratch);
            calls.Append(CultureInfo.InvariantCulture, $"    cm_layer{l}({input}, {output});\n");
        }
        string name = _graph.Name;
        var h = new StringBuilder();
        h.Append(CultureInfo.InvariantCulture, $$"""
            /* {{name}}: {{Describe()}},
               exported by `coldmind export --target c --fpu {{(integer ? "none" : "single")}}`. */
            #ifndef CM_MODEL_H
            #define CM_MODEL_H

            #include <stdint.h>

            #define CM_INPUTS {{_graph.Inputs}}
            #define CM_CLASSES {{_graph.Classes}}
            /* the one static activation arena (bytes); weights are const, in flash */
            #define CM_ARENA_BYTES {{ArenaBytes}}
            #define CM_FPU_{{(integer ? "NONE" : "SINGLE")}} 1

            """);
        if (integer)
            h.Append(CultureInfo.InvariantCulture, $$"""
                /* real input = int8 input * CM_INPUT_SCALE; real score = int32 score * CM_SCORE_SCALE */
                #define CM_INPUT_SCALE {{F(Plan!.InputScale)}}
                #define CM_SCORE_SCALE {{F(Plan.ScoreScale)}}

                /* Quantizes a float input to int8 from the floats' bits (no float arithmetic). */
                void cm_quantize(const float *input, int8_t *q);
                /* The network in integers only: int8 input (CM_INPUTS), int32 scores (CM_CLASSES). */
                void cm_predict_int8(const int8_t *input, int32_t *scores);
                /* cm_quantize, cm_predict_int8, then the scores as floats (CM_CLASSES int-to-float conversions). */
                void cm_predict(const float *input, float *scores);

                """);
        else
            h.Append("""
                /* Scores (logits, CM_CLASSES) of one input (CM_INPUTS floats). */
                void cm_predict(const float *input, float *scores);
                /* The same for an int8 input: real input = input[i] * input_scale. */
                void cm_predict_int8(const int8_t *input, float input_scale, float *scores);
                /* Scores to probabilities in place (uses expf: link with -lm). */
                void cm_softmax(float *scores);

                """);
        h.Append("#endif\n");

        var c = new StringBuilder();
        c.Append(CultureInfo.InvariantCulture, $$"""
            /* {{name}}: {{Describe()}}. Generated by Coldmind; C99, no heap, no recursion, no VLAs. */
            #include "model.h"
            {{(integer ? "#include <string.h>" : "#include <math.h>")}}

            static {{t}} cm_arena[{{arenaElements}}];

            """);
        foreach (var helper in _helpers) c.Append(Helpers[helper]).Append('\n');
        c.Append(_weights).Append(_layers);
        if (integer)
            c.Append(CultureInfo.InvariantCulture, $$"""
                void cm_quantize(const float *input, int8_t *q)
                {
                    uint32_t i;
                    for (i = 0; i < CM_INPUTS; i++) {
                        uint32_t u, mantissa, q8;
                        int32_t e, shift;
                        memcpy(&u, &input[i], sizeof u);
                        e = (int32_t)((u >> 23) & 0xFFu);
                        mantissa = (u & 0x7FFFFFu) | (e != 0 ? 0x800000u : 0u);
                        if (e == 255) { /* NaN: 0; infinities: saturated */
                            q[i] = (int8_t)(mantissa != 0x800000u ? 0 : (u >> 31) != 0u ? -127 : 127);
                            continue;
                        }
                        if (e == 0) e = 1;
                        shift = 150 + {{Plan!.InputShift}} - e;
                        if (mantissa == 0u || shift >= 63) q8 = 0u;
                        else if (shift <= 0) q8 = 127u;
                        else {
                            uint64_t r = (uint64_t)mantissa * {{Plan.InputInverse}}u;
                            r = (r + ((uint64_t)1 << (shift - 1))) >> shift;
                            q8 = r > 127u ? 127u : (uint32_t)r;
                        }
                        q[i] = (int8_t)((u >> 31) != 0u ? -(int32_t)q8 : (int32_t)q8);
                    }
                }

                void cm_predict_int8(const int8_t *input, int32_t *scores)
                {
                {{calls}}}

                void cm_predict(const float *input, float *scores)
                {
                    int32_t q[CM_CLASSES];
                    uint32_t i;
                    cm_quantize(input, cm_arena + {{offsetInput}});
                    cm_predict_int8(cm_arena + {{offsetInput}}, q);
                    for (i = 0; i < CM_CLASSES; i++) scores[i] = (float)q[i] * CM_SCORE_SCALE;
                }

                """);
        else
            c.Append(CultureInfo.InvariantCulture, $$"""
                void cm_predict(const float *input, float *scores)
                {
                {{calls}}}

                void cm_predict_int8(const int8_t *input, float input_scale, float *scores)
                {
                    uint32_t i;
                    for (i = 0; i < CM_INPUTS; i++) cm_arena[{{offsetInput}} + i] = (float)input[i] * input_scale;
                    cm_predict(cm_arena + {{offsetInput}}, scores);
                }

                void cm_softmax(float *scores)
                {
                    uint32_t i;
                    float top = scores[0], sum = 0.0f;
                    for (i = 1; i < CM_CLASSES; i++) if (scores[i] > top) top = scores[i];
                    for (i = 0; i < CM_CLASSES; i++) { scores[i] = expf(scores[i] - top); sum += scores[i]; }
                    for (i = 0; i < CM_CLASSES; i++) scores[i] /= sum;
                }

                """);
        return new Dictionary<string, string>
        {
            ["model.h"] = h.ToString(), ["model.c"] = c.ToString(),
            ["example.c"] = ExampleC(integer), ["README.md"] = Readme(integer),
        };
    }

    /// <summary>
    /// Writes the files into <paramref name="directory"/>: into a temporary folder beside it, then renamed over it.
    /// </summary>
    public IReadOnlyDictionary<string, string> Write(string directory)
    {
        var files = Generate();
        var full = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent))
            throw new ColdmindException($"Cannot write '{directory}': the folder '{parent}' does not exist.");
        if (File.Exists(full))
            throw new ColdmindException($"--out '{directory}' is a file; the C export writes a folder.");
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        string old = temp + ".old";
        try
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, true);
            Directory.CreateDirectory(temp);
            foreach (var (file, text) in files) File.WriteAllText(Path.Combine(temp, file), text);
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(temp, full);
            if (Directory.Exists(old)) Directory.Delete(old, true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { if (Directory.Exists(temp)) Directory.Delete(temp, true); } catch (IOException) { }
            throw new ColdmindException($"Cannot write '{directory}': {e.Message}", e);
        }
        return files;
    }

    public string Describe() => string.Join(" → ", Layers.Select(l => $"{l.Kind} {l.Columns}×{l.Rows}"));

    private void EmitLayer(int l, bool last, bool integer, int scratch)
    {
        var layer = Layers[l];
        string inT = integer ? "int8_t" : "float", outT = integer ? (last ? "int32_t" : "int8_t") : "float";
        var body = new StringBuilder();
        // What a finished sum becomes: float bias and ReLU, or the integer requantization and clamp.
        string lo = layer.Relu ? "0" : last ? "INT32_MIN" : "-127", hi = last ? "INT32_MAX" : "127";
        string Store(string v) => integer
            ? $"        y[r] = ({outT})cm_clamp(cm_shift({v}, {Plan!.Steps[l].Shift}), {lo}, {hi});\n"
            : (layer.Relu ? $"        y[r] = {v} < 0.0f ? 0.0f : {v};\n" : $"        y[r] = {v};\n");
        if (integer) _helpers.UnionWith(["shift", "clamp"]);
        switch (layer)
        {
            case FloatLayer f:
                int nonZeros = f.Weight.Count(v => v != 0);
                bool sparse = (4L + Width(f.Columns - 1)) * nonZeros + (long)Width(nonZeros) * (f.Rows + 1)
                    < 4L * f.Weight.Length;
                if (f.Bias != null) Array(f.Bias, $"cm_b{l}", "float");
                body.Append(CultureInfo.InvariantCulture, $"    uint32_t r;\n    for (r = 0; r < {f.Rows}u; r++) {{\n")
                    .Append("        float s = 0.0f;\n");
                if (sparse)
                {
                    var (start, col, kept) = Csr(f.Weight, f.Rows, f.Columns);
                    Array(start, $"cm_rs{l}", IndexType(nonZeros));
                    Array(col, $"cm_ci{l}", IndexType(f.Columns - 1));
                    Array(kept, $"cm_w{l}", "float");
                    body.Append(CultureInfo.InvariantCulture, $"        uint32_t k;\n")
                        .Append(CultureInfo.InvariantCulture, $"        for (k = cm_rs{l}[r]; k < cm_rs{l}[r + 1]; ")
                        .Append(CultureInfo.InvariantCulture, $"k++) s += cm_w{l}[k] * x[cm_ci{l}[k]];\n");
                }
                else
                {
                    Array(f.Weight, $"cm_w{l}", "float");
                    body.Append(CultureInfo.InvariantCulture, $"        const float *w = cm_w{l} + r * {f.Columns}u;\n")
                        .Append("        uint32_t c;\n")
                            .Append(CultureInfo.InvariantCulture, $"        for (c = 0; c < {f.Columns}u; c++)")
                            .Append(" s += w[c] * x[c];\n");
                }
                if (f.Bias != null) body.Append(CultureInfo.InvariantCulture, $"        s = s + cm_b{l}[r];\n");
                body.Append(Store("s")).Append("    }\n");
                _storage.Add($"layer {l}: float {f.Columns}×{f.Rows}, "
                    + (sparse ? $"CSR ({nonZeros:N0} kept)" : "dense"));
                break;
            case CodeLayer q:
                EmitCodes(l, q, integer, body, Store);
                break;
            case TernaryLayer tl:
                EmitTernary(l, tl, integer, scratch, body, Store);
                break;
            case ConvLayer v:
                EmitConv(l, v, body);
                break;
        }
        _layers.Append(CultureInfo.InvariantCulture,
            $"/* layer {l}: {layer.Kind} {layer.Columns} → {layer.Rows}{(layer.Relu ? ", ReLU" : "")} */\n");
        _layers.Append(CultureInfo.InvariantCulture, $"static void cm_layer{l}(const {inT} *x, {outT} *y)\n{{\n")
            .Append(body).Append("}\n\n");
    }

    private void EmitCodes(int l, CodeLayer q, bool integer, StringBuilder body, Func<string, string> store)
    {
        var (bits, offset) = q.Method switch
        {
            PtqMethod.Int8 => (8, 0), PtqMethod.Int4 => (4, -8), PtqMethod.Int2 => (2, -2),
            PtqMethod.Ternary => (2, -1), _ => (1, 0),
        };
        int groups = q.Groups;
        string Decode(string i) => bits switch
        {
            8 => $"(int32_t)((const int8_t *)cm_q{l})[{i}]",
            1 => $"((int32_t)((cm_q{l}[{i} >> 3] >> ({i} & 7u)) & 1u) * 2 - 1)",
            _ => $"((int32_t)((cm_q{l}[{i} >> {Log2(8 / bits)}] >> (({i} & {8 / bits - 1}u) * {bits}u))"
                + $" & {(1 << bits) - 1}u) - {-offset})",
        };
        long denseBytes = ((long)q.Codes.Length * bits + 7) / 8;
        var nonZeroCodes = q.Codes.Where(v => v != 0).ToArray();
        long sparseBytes = ((long)nonZeroCodes.Length * bits + 7) / 8 + (long)Width(q.Columns - 1) * nonZeroCodes.Length
            + (long)Width(nonZeroCodes.Length) * (q.Rows * groups + 1);
        bool sparse = q.Method != PtqMethod.Binary && sparseBytes < denseBytes;
        string scale = q.GroupSize > 0 ? $"cm_s{l}[r * {groups}u + g]" : $"cm_s{l}[0]";
        if (integer)
        {
            var f = (CodeFixedPoint)Plan!.Steps[l];
            Array(f.Multipliers, $"cm_s{l}", "int32_t");
            if (f.Bias != null) Array(f.Bias, $"cm_b{l}", "int64_t");
        }
        else
        {
            Array(q.Scales, $"cm_s{l}", "float");
            if (q.Bias != null) Array(q.Bias, $"cm_b{l}", "float");
        }
        string acc = integer ? "int32_t" : "float", zero = integer ? "0" : "0.0f";
        string term(string code, string xi) => integer ? $"{code} * (int32_t){xi}" : $"(float){code} * {xi}";
        string finish = integer ? $"t += (int64_t)a * {scale};" : $"s += {scale} * a;";
        body.Append("    uint32_t r;\n    for (r = 0; r < ").Append(q.Rows).Append("u; r++) {\n        uint32_t g;\n");
        body.Append(integer ? $"        int64_t t = {(q.Bias != null ? $"cm_b{l}[r]" : "0")};\n"
            : "        float s = 0.0f;\n");
        if (sparse)
        {
            var start = new uint[q.Rows * groups + 1];
            var col = new List<ushort>();
            var kept = new List<sbyte>();
            for (int r = 0; r < q.Rows; r++)
                for (int g = 0; g < groups; g++)
                {
                    start[r * groups + g] = (uint)col.Count;
                    for (int c = g * q.GroupWidth; c < Math.Min(q.Columns, (g + 1) * q.GroupWidth); c++)
                        if (q.Codes[r * q.Columns + c] != 0)
                        {
                            col.Add((ushort)c);
                            kept.Add(q.Codes[r * q.Columns + c]);
                        }
                }
            start[^1] = (uint)col.Count;
            Array(Pack(kept, bits, offset), $"cm_q{l}", "uint8_t");
            Array(start, $"cm_gs{l}", IndexType(col.Count));
            Array(col.ToArray(), $"cm_ci{l}", IndexType(q.Columns - 1));
            body.Append(CultureInfo.InvariantCulture, $$"""
                        for (g = 0; g < {{groups}}u; g++) {
                            {{acc}} a = {{zero}};
                            uint32_t k;
                            for (k = cm_gs{{l}}[r * {{groups}}u + g]; k < cm_gs{{l}}[r * {{groups}}u + g + 1]; k++)
                                a += {{term(Decode("k"), $"x[cm_ci{l}[k]]")}};
                            {{finish}}
                        }

                """);
        }
        else
        {
            Array(Pack(q.Codes, bits, offset), $"cm_q{l}", "uint8_t");
            body.Append(CultureInfo.InvariantCulture, $$"""
                        uint32_t c = 0, i = r * {{q.Columns}}u;
                        for (g = 0; g < {{groups}}u; g++) {
                            uint32_t end = c + {{q.GroupWidth}}u < {{q.Columns}}u
                                ? c + {{q.GroupWidth}}u : {{q.Columns}}u;
                            {{acc}} a = {{zero}};
                            for (; c < end; c++, i++) a += {{term(Decode("i"), "x[c]")}};
                            {{finish}}
                        }

                """);
        }
        if (!integer && q.Bias != null) body.Append(CultureInfo.InvariantCulture, $"        s = s + cm_b{l}[r];\n");
        body.Append(store(integer ? "t" : "s")).Append("    }\n");
        _storage.Add($"layer {l}: {q.Kind} codes {q.Columns}×{q.Rows}, "
            + $"{(q.GroupSize > 0 ? $"a scale per {q.GroupSize}" : "one scale")}, "
            + (sparse ? $"CSR ({nonZeroCodes.Length:N0} kept)" : "dense"));
    }

    private void EmitTernary(int l, TernaryLayer t, bool integer, int scratch, StringBuilder body,
        Func<string, string> store)
    {
        int n = t.Columns, rowBytes = (n + 3) / 4, nonZeros = t.Trits.Count(v => v != 0);
        long denseBytes = (long)rowBytes * t.Rows;
        long indexBytes = (long)Width(n - 1) * nonZeros + (long)Width(nonZeros) * (2 * t.Rows + 1);
        bool index = indexBytes < denseBytes;
        string sum;
        if (index)
        {
            var start = new uint[t.Rows + 1];
            var negative = new uint[t.Rows];
            var col = new List<ushort>();
            for (int r = 0; r < t.Rows; r++)
            {
                start[r] = (uint)col.Count;
                for (int c = 0; c < n; c++) if (t.Trits[r * n + c] > 0) col.Add((ushort)c);
                negative[r] = (uint)col.Count;
                for (int c = 0; c < n; c++) if (t.Trits[r * n + c] < 0) col.Add((ushort)c);
            }
            start[^1] = (uint)col.Count;
            string colType = IndexType(n - 1);
            Array(start, $"cm_rs{l}", IndexType(nonZeros));
            Array(negative, $"cm_ns{l}", IndexType(nonZeros));
            Array(col.ToArray(), $"cm_ci{l}", colType);
            _helpers.Add("trits_index_" + colType);
            sum = $"cm_trits_index_{colType[..^2]}(cm_ci{l}, cm_rs{l}[r], cm_ns{l}[r], cm_rs{l}[r + 1], q)";
        }
        else
        {
            var packed = new byte[denseBytes];
            for (int r = 0; r < t.Rows; r++)
                for (int c = 0; c < n; c++)
                {
                    int v = t.Trits[r * n + c];
                    if (v != 0) packed[r * rowBytes + c / 4] |= (byte)((v > 0 ? 1 : 2) << (2 * (c % 4)));
                }
            Array(packed, $"cm_t{l}", "uint8_t");
            _helpers.Add("trits_dense");
            sum = $"cm_trits_dense(cm_t{l} + r * {rowBytes}u, {n}u, q)";
        }
        string q = $"(int8_t *)(cm_arena + {scratch})";
        if (integer)
        {
            var f = (TernaryFixedPoint)Plan!.Steps[l];
            Array(f.Gain, $"cm_g{l}", "int16_t");
            _helpers.Add("isqrt");
            body.Append(CultureInfo.InvariantCulture, $$"""
                    int8_t *q = {{q}};
                    int32_t m = 0;
                    int64_t ss = 0, d, mult = 0;
                    uint32_t i, r;
                    for (i = 0; i < {{n}}u; i++) {
                        int32_t p = (int32_t)x[i] * cm_g{{l}}[i];
                        if (p < 0) p = -p;
                        if (p > m) m = p;
                        ss += (int32_t)x[i] * x[i];
                    }
                    for (i = 0; i < {{n}}u; i++) {
                        int32_t p = (int32_t)x[i] * cm_g{{l}}[i];
                        q[i] = (int8_t)(m > 0 ? (254 * p + (p >= 0 ? m : -m)) / (2 * m) : 0);
                    }
                    d = (int64_t)cm_isqrt(((uint64_t)ss << 16) + {{f.Eps}}ULL);
                    if (d > 0) mult = (int64_t)m * {{f.K}}LL / d;
                    for (r = 0; r < {{t.Rows}}u; r++) {
                        int64_t v = (int64_t){{sum}} * mult;

                """);
            body.Append(store("v")).Append("    }\n");
        }
        else
        {
            Array(t.Norm, $"cm_g{l}", "float");
            _helpers.Add("rms_quantize");
            body.Append(CultureInfo.InvariantCulture, $$"""
                    int8_t *q = {{q}};
                    float scale = {{F(t.Scale)}} * cm_rms_quantize(x, cm_g{{l}}, {{F(t.Eps)}}, {{n}}u, q);
                    uint32_t r;
                    for (r = 0; r < {{t.Rows}}u; r++) {
                        float s = (float){{sum}} * scale;

                """);
            body.Append(store("s")).Append("    }\n");
        }
        _storage.Add($"layer {l}: ternary {n}×{t.Rows}, {nonZeros:N0} nonzero trits, "
            + (index ? "+1/−1 column lists" : "packed 2 bits"));
    }

    private void EmitConv(int l, ConvLayer v, StringBuilder body)
    {
        Array(v.Weight, $"cm_w{l}", "float");
        if (v.Bias != null) Array(v.Bias, $"cm_b{l}", "float");
        int h = v.Height, w = v.Width, oh = v.Pool ? h / 2 : h, ow = v.Pool ? w / 2 : w;
        string relu = v.Relu ? "if (s < 0.0f) s = 0.0f;" : "";
        // Each output position computed where it is needed: 2×2 pooled outputs take the max of their four sums.
        body.Append(CultureInfo.InvariantCulture, $$"""
                uint32_t o, i, j, a, b, c, ki, kj;
                for (o = 0; o < {{v.OutChannels}}u; o++)
                    for (i = 0; i < {{oh}}u; i++)
                        for (j = 0; j < {{ow}}u; j++) {
                            float best = 0.0f;
                            for (a = 0; a < {{(v.Pool ? 2 : 1)}}u; a++)
                                for (b = 0; b < {{(v.Pool ? 2 : 1)}}u; b++) {
                                    uint32_t yy = i * {{(v.Pool ? 2 : 1)}}u + a, xx = j * {{(v.Pool ? 2 : 1)}}u + b;
                                    float s = 0.0f;
                                    for (c = 0; c < {{v.InChannels}}u; c++)
                                        for (ki = 0; ki < 3u; ki++)
                                            for (kj = 0; kj < 3u; kj++) {
                                                /* one above the input's row and column */
                                                uint32_t ii = yy + ki, jj = xx + kj;
                                                if (ii >= 1u && ii <= {{h}}u && jj >= 1u && jj <= {{w}}u)
                                                    s += cm_w{{l}}[((o * {{v.InChannels}}u + c) * 3u + ki) * 3u + kj]
                                                        * x[(c * {{h}}u + ii - 1u) * {{w}}u + jj - 1u];
                                            }
                                    {{(v.Bias != null ? $"s = s + cm_b{l}[o];" : "")}}
                                    {{relu}}
                                    if ((a == 0u && b == 0u) || s > best) best = s;
                                }
                            y[(o * {{oh}}u + i) * {{ow}}u + j] = best;
                        }

            """);
        _storage.Add($"layer {l}: float conv3×3 {v.InChannels}→{v.OutChannels} on {h}×{w}"
            + (v.Pool ? ", max pool 2×2" : ""));
    }

    /// <summary>The narrowest unsigned type holding <paramref name="max"/> (column indices, row starts).</summary>
    private static string IndexType(long max) =>
        max <= byte.MaxValue ? "uint8_t" : max <= ushort.MaxValue ? "uint16_t" : "uint32_t";

    private static int Width(long max) => max <= byte.MaxValue ? 1 : max <= ushort.MaxValue ? 2 : 4;

    private static (uint[] Start, uint[] Col, float[] Kept) Csr(float[] w, int rows, int cols)
    {
        var start = new uint[rows + 1];
        var col = new List<uint>();
        var kept = new List<float>();
        for (int r = 0; r < rows; r++)
        {
            start[r] = (uint)col.Count;
            for (int c = 0; c < cols; c++) if (w[r * cols + c] != 0) { col.Add((uint)c); kept.Add(w[r * cols + c]); }
        }
        start[rows] = (uint)col.Count;
        return (start, col.ToArray(), kept.ToArray());
    }

    /// <summary>
    /// Codes packed low bits first, each offset to be non-negative (binary: 1 for +1); int8 as its
    /// two's-complement byte.
    /// </summary>
    private static byte[] Pack(IReadOnlyList<sbyte> codes, int bits, int offset)
    {
        int per = 8 / bits;
        var packed = new byte[(codes.Count + per - 1) / per];
        for (int i = 0; i < codes.Count; i++)
        {
            int field = bits == 8 ? (byte)codes[i] : bits == 1 ? (codes[i] > 0 ? 1 : 0) : codes[i] - offset;
            packed[i / per] |= (byte)(field << (bits * (i % per)));
        }
        return packed;
    }

    private static int Log2(int v) => System.Numerics.BitOperations.Log2((uint)v);

    private void Array<T>(IReadOnlyList<T> values, string name, string type)
    {
        int size = type switch { "uint8_t" => 1, "uint16_t" or "int16_t" => 2, "int64_t" => 8, _ => 4 };
        WeightBytes += (long)size * values.Count;
        _weights.Append(CultureInfo.InvariantCulture, $"static const {type} {name}[{Math.Max(1, values.Count)}] = {{");
        for (int i = 0; i < values.Count; i++)
        {
            if (i % 12 == 0) _weights.Append("\n    ");
            _weights.Append(values[i] switch
            {
                float f => F(f),
                long v => v.ToString(CultureInfo.InvariantCulture) + "LL",
                int v => v == int.MinValue ? "INT32_MIN" : v.ToString(CultureInfo.InvariantCulture),
                uint v => v.ToString(CultureInfo.InvariantCulture) + "u",
                IFormattable v => v.ToString(null, CultureInfo.InvariantCulture),
                var v => v!.ToString(),
            }).Append(i + 1 < values.Count ? ", " : "");
        }
        _weights.Append(values.Count == 0 ? "0" : "").Append("\n};\n");
    }

    /// <summary>A float as a C literal that reads back to the same float (round-trip digits, f suffix).</summary>
    private static string F(double v)
    {
        float f = (float)v;
        if (float.IsNaN(f) || float.IsInfinity(f))
            throw new ColdmindException($"A weight is {f}; the C export writes finite weights only.");
        string s = f.ToString("R", CultureInfo.InvariantCulture);
        if (!s.Contains('.') && !s.Contains('E')) s += ".0";
        return s.Replace("E", "e", StringComparison.Ordinal) + "f";
    }

    /// <summary>Shared helpers, emitted when a layer uses them.</summary>
    private static readonly Dictionary<string, string> Helpers = new()
    {
        ["clamp"] = """
            static int64_t cm_clamp(int64_t v, int64_t lo, int64_t hi)
            {
                return v < lo ? lo : v > hi ? hi : v;
            }

            """,
        ["shift"] = """
            /* v / 2^s rounded half away from zero: the requantization's fixed-point step */
            static int64_t cm_shift(int64_t v, int s)
            {
                int64_t half;
                if (s == 0) return v;
                half = (int64_t)1 << (s - 1);
                return v >= 0 ? (v + half) >> s : -((-v + half) >> s);
            }

            """,
        ["isqrt"] = """
            /* floor(sqrt(v)), bit by bit: RMSNorm's root without an FPU */
            static uint64_t cm_isqrt(uint64_t v)
            {
                uint64_t root = 0, bit = (uint64_t)1 << 62;
                while (bit > v) bit >>= 2;
                while (bit != 0u) {
                    if (v >= root + bit) { v -= root + bit; root = (root >> 1) + bit; }
                    else root >>= 1;
                    bit >>= 2;
                }
                return root;
            }

            """,
        ["trits_dense"] = """
            /* One row of trits packed four a byte (01: +1, 10: -1): additions and subtractions only; a byte of
               zeros (pruned weights) costs one test. */
            static int32_t cm_trits_dense(const uint8_t *p, uint32_t n, const int8_t *q)
            {
                int32_t acc = 0;
                uint32_t c;
                for (c = 0; c < n; c += 4u) {
                    uint32_t b = *p++, j;
                    for (j = c; b != 0u; j++, b >>= 2) {
                        if ((b & 3u) == 1u) acc += q[j];
                        else if ((b & 3u) == 2u) acc -= q[j];
                    }
                }
                return acc;
            }

            """,
        ["trits_index_uint8_t"] = """
            /* One row as the columns of its +1 trits, then of its -1 trits: one load and one add or subtract a kept
               weight, nothing for a pruned one. */
            static int32_t cm_trits_index_uint8(const uint8_t *col, uint32_t k, uint32_t negative, uint32_t end,
                                                const int8_t *q)
            {
                int32_t acc = 0;
                for (; k < negative; k++) acc += q[col[k]];
                for (; k < end; k++) acc -= q[col[k]];
                return acc;
            }

            """,
        ["trits_index_uint16_t"] = """
            /* One row as the columns of its +1 trits, then of its -1 trits: one load and one add or subtract a kept
               weight, nothing for a pruned one. */
            static int32_t cm_trits_index_uint16(const uint16_t *col, uint32_t k, uint32_t negative, uint32_t end,
                                                 const int8_t *q)
            {
                int32_t acc = 0;
                for (; k < negative; k++) acc += q[col[k]];
                for (; k < end; k++) acc -= q[col[k]];
                return acc;
            }

            """,
        ["trits_index_uint32_t"] = """
            /* One row as the columns of its +1 trits, then of its -1 trits: one load and one add or subtract a kept
               weight, nothing for a pruned one. */
            static int32_t cm_trits_index_uint32(const uint32_t *col, uint32_t k, uint32_t negative, uint32_t end,
                                                 const int8_t *q)
            {
                int32_t acc = 0;
                for (; k < negative; k++) acc += q[col[k]];
                for (; k < end; k++) acc -= q[col[k]];
                return acc;
            }

            """,
        ["rms_quantize"] = """
            /* round(v) half away from zero, clamped to [-127, 127], without libm */
            static int32_t cm_round(float v)
            {
                int32_t t = (int32_t)v;
                float f = v - (float)t;
                if (f >= 0.5f) t++;
                else if (f <= -0.5f) t--;
                return t < -127 ? -127 : t > 127 ? 127 : t;
            }

            /* BitLinear's input: RMSNorm with gain g, then absmax int8 into q; returns the int8 step. */
            static float cm_rms_quantize(const float *x, const float *g, float eps, uint32_t n, int8_t *q)
            {
                uint32_t i;
                float ss = 0.0f, inv, amax = 0.0f, step, inv2;
                for (i = 0; i < n; i++) ss += x[i] * x[i];
                inv = 1.0f / sqrtf(ss / (float)n + eps);
                for (i = 0; i < n; i++) {
                    float h = x[i] * inv * g[i];
                    if (h < 0.0f) h = -h;
                    if (h > amax) amax = h;
                }
                step = amax > 0.0f ? amax / 127.0f : 1.0f;
                inv2 = 1.0f / step;
                for (i = 0; i < n; i++) q[i] = (int8_t)cm_round(x[i] * inv * g[i] * inv2);
                return step;
            }

            """,
    };

    private string ExampleC(bool integer)
    {
        var (input, label) = _options.Example ?? (new float[_graph.Inputs], -1);
        var sb = new StringBuilder();
        sb.Append("/* One test example through the model: cc -std=c99 -O2 example.c model.c")
            .Append(integer ? "" : " -lm").Append(" && ./a.out */\n");
        sb.Append("#include <stdio.h>\n#include \"model.h\"\n\n");
        sb.Append("static const float example[CM_INPUTS] = {");
        for (int i = 0; i < input.Length; i++)
            sb.Append(i % 12 == 0 ? "\n    " : "").Append(F(input[i])).Append(i + 1 < input.Length ? ", " : "");
        sb.Append(CultureInfo.InvariantCulture, $$"""

            };

            int main(void)
            {
                float scores[CM_CLASSES];
                int i, best = 0;
                cm_predict(example, scores);
                for (i = 1; i < CM_CLASSES; i++) if (scores[i] > scores[best]) best = i;
                printf("predicted class %d (label {{label}}), score %f\n", best, (double)scores[best]);
                return 0;
            }

            """);
        return sb.ToString();
    }

    private const string IntegerNote = """
        The network runs in integers (int8 activations, int32 accumulators, fixed-point requantization):
        `cm_predict_int8` takes int8 inputs (real = q · CM_INPUT_SCALE) and gives int32 scores (real = s ·
        CM_SCORE_SCALE) without any float arithmetic; `cm_quantize` turns floats into those int8 inputs from their bits.
        """;

    private const string FloatNote = """
        Float parts (float layers, RMSNorm, scores) use single-precision float: hardware on a Cortex-M4F/M7, soft
        float (libgcc) on a core without an FPU. Link with `-lm` (sqrtf, expf). `cm_predict_int8` takes int8 inputs
        and their scale.
        """;

    private string Readme(bool integer) => $$"""
        # {{_graph.Name}} in C

        {{Describe()}}, exported by Coldmind (`coldmind export --target c{{(integer ? " --fpu none" : "")}}`).
        Plain C99: no heap, no recursion, no variable-length arrays; weights are `const` arrays (flash), the
        activations live in one static arena of `CM_ARENA_BYTES` ({{ArenaBytes:N0}}) bytes; weights take
        {{WeightBytes:N0}} bytes.

        {{string.Join("\n", _storage.Select(s => "- " + s))}}

        ```c
        #include "model.h"
        float scores[CM_CLASSES];
        cm_predict(input, scores);   /* input: CM_INPUTS floats, as Coldmind's data gives them */
        ```

        {{(integer ? IntegerNote : FloatNote)}}

        Build: `cc -std=c99 -O2 -Wall -Wextra -pedantic example.c model.c{{(integer ? "" : " -lm")}}`; for a Cortex-M7:
        `arm-none-eabi-gcc -mthumb -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard -O2 -c model.c`.
        """;
}
