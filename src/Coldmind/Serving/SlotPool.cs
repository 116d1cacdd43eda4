using System.Collections.Concurrent;
using Coldmind.Runtime;

namespace Coldmind.Serving;

/// <summary>The queue is full: the request is refused rather than held (HTTP 503).</summary>
public sealed class ServerBusyException(string message) : ColdmindException(message);

/// <summary>
/// N slots, each an <see cref="InferenceSession"/> with its own KV cache, created when first needed (memory follows
/// use: at most N caches ever exist). Requests beyond N wait in a queue of bounded length, in arrival order; a
/// waiting request whose client gives up leaves the queue.
/// </summary>
internal sealed class SlotPool(LanguageModel model, int slots, int contextLength, int maxQueue) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(slots, slots);
    private readonly ConcurrentBag<InferenceSession> _free = [];
    private int _queued, _created;

    public int Slots => slots;
    public int Queued => Volatile.Read(ref _queued);
    public int Busy => slots - _gate.CurrentCount;
    /// <summary>KV caches made so far (never more than <see cref="Slots"/>).</summary>
    public int Created => Volatile.Read(ref _created);

    public async Task<InferenceSession> AcquireAsync(CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        if (!_gate.Wait(0, CancellationToken.None)) // a free slot: no place in the queue taken
        {
            if (Interlocked.Increment(ref _queued) > maxQueue)
            {
                Interlocked.Decrement(ref _queued);
                throw new ServerBusyException($"All {slots} slots are busy and {maxQueue} requests already wait; try again later.");
            }
            try { await _gate.WaitAsync(cancel); }
            finally { Interlocked.Decrement(ref _queued); }
        }
        if (_free.TryTake(out var session)) return session;
        Interlocked.Increment(ref _created);
        return model.CreateSession(contextLength);
    }

    public void Release(InferenceSession session)
    {
        session.Reset();
        _free.Add(session);
        _gate.Release();
    }

    public void Dispose() => _gate.Dispose();
}
