using System.CommandLine;
using Coldmind.Cli.Options;
using Coldmind.Serving;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind serve MODEL.gguf`: a language model behind an OpenAI-compatible server (<see cref="OpenAiServer"/>).
/// The options here join `serve`'s own; which server runs is chosen by what the file is (a GGUF file or not).
/// </summary>
internal sealed class ServeLanguageModel
{
    private readonly Option<int> _parallel = new("--parallel", "-np")
        { Description = "GGUF: generations at once, each with its own KV cache", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _queue = new("--queue")
        { Description = "GGUF: requests that may wait for a slot (then 503)", DefaultValueFactory = _ => 64 };
    private readonly Option<string?> _apiKey = new("--api-key")
        { Description = "GGUF: require Authorization: Bearer KEY on /v1" };
    private readonly Option<int?> _context = new("--ctx")
        { Description = "GGUF: context of each slot in tokens (default: the model's)" };
    private readonly Option<int> _maxTokens = new("--max-tokens")
        { Description = "GGUF: most tokens a request may ask for (the chat default)", DefaultValueFactory = _ => 512 };
    private readonly Option<int> _maxPrompt = new("--max-prompt-tokens")
        { Description = "GGUF: most prompt tokens a request may bring", DefaultValueFactory = _ => 4096 };
    private readonly Option<string?> _alias = new("--alias")
        { Description = "GGUF: the model's id in responses (default: the file name)" };
    private readonly Option<string?> _device = new("--device")
        { Description = "GGUF: estimate the joules of the tokens on this device (e.g. rpi5; host measures this one)" };
    private readonly Option<string?> _deviceFile = new DeviceOptions().File;
    private readonly Option<int> _threads = CommonOptions.Threads();

    public IEnumerable<Option> All =>
        [_parallel, _queue, _apiKey, _context, _maxTokens, _maxPrompt, _alias, _device, _deviceFile, _threads];

    /// <summary>True when <paramref name="path"/> starts with GGUF's magic.</summary>
    public static bool IsGguf(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return file.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public async Task<int> RunAsync(ParseResult r, string path, string listen, int maxRequestBytes,
        CancellationToken token)
    {
        CommonOptions.UseThreads(r.GetValue(_threads));
        using var client = ColdmindChatClient.Open(path, new ChatClientSettings
        {
            Parallel = r.GetValue(_parallel), MaxQueue = r.GetValue(_queue), ContextLength = r.GetValue(_context),
            MaxTokens = r.GetValue(_maxTokens), MaxPromptTokens = r.GetValue(_maxPrompt), ModelId = r.GetValue(_alias),
            Device = r.GetValue(_device) is { } device ? DeviceOptions.Load(device, r.GetValue(_deviceFile)) : null,
        });
        var settings = new OpenAiServerSettings
            { Listen = listen, ApiKey = r.GetValue(_apiKey), MaxRequestBytes = maxRequestBytes };
        await using var server = await OpenAiServer.StartAsync(client, settings,
            line => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}"));
        Console.WriteLine($"Serving '{client.ModelId}' ({client.Model.Config.Architecture}, {client.Template.Name} " +
            $"chat template, context {client.ContextLength}, {client.Settings.Parallel} slot(s)) on {server.Address} " +
            "— OpenAI-compatible /v1; Ctrl-C stops.");
        Console.Out.Flush();
        try { await Task.Delay(Timeout.Infinite, token); }
        catch (OperationCanceledException) { }
        var m = client.Metrics;
        Console.WriteLine($"Stopped after {m.Requests} completions ({m.CompletionTokens} tokens), " +
            $"{m.Cancelled} cancelled, " +
            $"{m.Rejected} rejected.");
        return 0;
    }
}
