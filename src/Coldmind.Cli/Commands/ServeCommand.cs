using System.CommandLine;
using Coldmind.Cognition;
using Coldmind.Network;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind serve MODEL --listen HOST:PORT --key-file K`: the cloud model of a cascade, behind Kestrel; a GGUF
/// language model instead gets an OpenAI-compatible server (<see cref="ServeLanguageModel"/>).
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL")
        {
            Description = "a classifier: a `coldmind train` checkpoint (or shrink --teacher-out), or a shrunk model; "
                + "or a GGUF language model",
        };
        var listen = new Option<string>("--listen") { Description = "HOST:PORT to listen on (port 0: any free port)", DefaultValueFactory = _ => "127.0.0.1:8080" };
        var keyFile = KeyFile();
        var maxBytes = new Option<int?>("--max-request-bytes")
            { Description = "larger requests are refused unread (default: 64 KiB; GGUF: 1 MiB)" };
        var lm = new ServeLanguageModel();
        var cmd = new Command("serve", "Serve a classifier to edge devices that escalate (`coldmind cascade --cloud-url`): "
            + "signed requests only, bounded and validated; or a GGUF language model over OpenAI's API.")
            { modelPath, listen, keyFile, maxBytes };
        foreach (var o in lm.All) cmd.Options.Add(o);
        cmd.SetAction(async (r, token) =>
        {
            if (ServeLanguageModel.IsGguf(r.GetValue(modelPath)!))
                return r.GetValue(keyFile) != null
                    ? throw new ColdmindException("--key-file signs a classifier's requests; a GGUF model takes --api-key.")
                    : await lm.RunAsync(r, r.GetValue(modelPath)!, r.GetValue(listen)!, r.GetValue(maxBytes) ?? 1 << 20,
                        token);
            var model = ClassifierModel.Load(r.GetValue(modelPath)!);
            using var auth = MessageAuth.FromKeyFile(r.GetValue(keyFile)
                ?? throw new ColdmindException("Serving a classifier needs --key-file."), r.GetValue(listen)!);
            int limit = r.GetValue(maxBytes) ?? 1 << 16;
            if (limit < Payload.HeaderBytes) throw new ColdmindException($"--max-request-bytes must be at least {Payload.HeaderBytes}, got {limit}.");
            float temperature = model.Provenance.Temperature ?? 1f;
            await using var server = await EscalationServer.StartAsync(model, temperature, r.GetValue(listen)!, auth, limit,
                line => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {line}"));
            Console.WriteLine($"Serving '{model.Name}' ({model.Inputs} features, {model.Classes} classes, T = {temperature:G3}) on {server.Address} — Ctrl-C stops.");
            Console.Out.Flush();
            try { await Task.Delay(Timeout.Infinite, token); }
            catch (OperationCanceledException) { }
            Console.WriteLine($"Stopped after {server.Served} answers and {server.Rejected} rejected requests.");
            return 0;
        });
        return cmd;
    }

    public static Option<string?> KeyFile() => new("--key-file")
    {
        Description = "the swarm secret (`coldmind key new > key`), or a device's key (`coldmind key derive`)",
    };
}
