namespace Coldmind;

/// <summary>
/// An error caused by the user's input (a file, a shape, a flag) rather than by a bug.
/// Its message is complete and readable on its own: the CLI prints it as the one line the user sees.
/// </summary>
public class ColdmindException : Exception
{
    public ColdmindException(string message) : base(message) { }
    public ColdmindException(string message, Exception inner) : base(message, inner) { }
}
