// Chat with a local GGUF model through Microsoft.Extensions.AI's IChatClient: the code below the first line is what
// talks to any IChatClient (OpenAI, Ollama, …); Coldmind runs the model in this process.
//   dotnet run --project samples/ChatWithGguf -- ../shared/models/stories260K/stories260K.f32.gguf
using Coldmind;
using Coldmind.Serving;
using Microsoft.Extensions.AI;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ChatWithGguf MODEL.gguf   (then type; an empty line ends the chat)");
    return 2;
}
try
{
    using IChatClient chat = ColdmindChatClient.Open(args[0]);
    var options = new ChatOptions { Temperature = 0.7f, MaxOutputTokens = 200 };
    List<ChatMessage> history = [];
    while (Console.ReadLine() is { Length: > 0 } line)
    {
        history.Add(new ChatMessage(ChatRole.User, line));
        var answer = new List<ChatResponseUpdate>();
        await foreach (var update in chat.GetStreamingResponseAsync(history, options))
        {
            Console.Write(update.Text); // each piece as it is generated
            answer.Add(update);
        }
        Console.WriteLine();
        history.AddMessages(answer); // the conversation goes on from the whole answer
    }
    return 0;
}
catch (ColdmindException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
