using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coldmind.Cli.Output;

/// <summary>
/// The one JSON writer of the command line (--json): snake_case names (System.Text.Json's naming policy), and a
/// number that cannot be computed (NaN, ±∞: an empty split's accuracy, a calibration error of nothing) written
/// as null rather than failing the whole output.
/// </summary>
internal static class JsonOutput
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Converters = { new FiniteDouble(), new FiniteFloat() },
    };

    public static string Serialize(object value) => JsonSerializer.Serialize(value, Options);

    /// <summary>Writes <paramref name="value"/> as one line of JSON on stdout.</summary>
    public static void Write(object value) => Console.WriteLine(Serialize(value));

    private sealed class FiniteDouble : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) => reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }

    private sealed class FiniteFloat : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) => reader.GetSingle();

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options)
        {
            if (float.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}
