using System.Collections.Concurrent;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;

namespace Coldmind.Serving;

/// <summary>The queue is full: the request is refused rather than held (HTTP 503).</summary>
public sealed class ServerBusyException(string message) : ColdmindException(message);

/// <summary>
/// One slot: an <see cref="InferenceSession"/> (its own KV cache) and the thread that generates in it. The thread
/// lives as long as the slot, so a request starts no thread and finds the kernels' per-thread scratch buffers
/// already allocated.
/// </summary>
internal sealed class Slot : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];

    public InferenceSession Session { get; }

    public Slot(InferenceSession session, int index)
    {
        Session = session;
        var thread = new Thread(() =>
        {
            foreach (var work in _work.GetConsumingEnumerable()) work();
        }) { IsBackground = true, Name = $"coldmind slot {index}" };
        thread.Start();
    }

    /// <summary>Runs <paramref name="work"/> on the slot's thread.</summary>
    public Task<T> Run<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task;
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        _work.Dispose();
    }
}

/// <summary>
/// N slots, each made when first needed (memory follows use: at most N KV caches ever exist). Requests beyond N
/// wait in a queue of bounded length, in arrival order; a waiting request whose client gives up leaves the queue.
/// </summary>
internal sealed class SlotPool(LanguageModel model, int slots, int contextLength, int maxQueue) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(slots, slots);
    private readonly ConcurrentBag<Slot> _free = [];
    private readonly ConcurrentQueue<Slot> _all = [];
    private int _queued;

    public int Slots => slots;
    public int Queued => Volatile.Read(ref _queued);
    public int Busy => slots - _gate.CurrentCount;
    /// <summary>Slots (KV caches) made so far, never more than <see cref="Slots"/>.</summary>
    public int Created => _all.Count;

    public async Task<Slot> AcquireAsync(CancellationToken cancel)
    {
        cancel.ThrowIfCancellationRequested();
        if (!_gate.Wait(0, CancellationToken.None)) // a free slot: no place in the queue taken
        {
            if (Interlocked.Increment(ref _queued) > maxQueue)
            {
                Interlocked.Decrement(ref _queued);
                throw new ServerBusyException(
                    $"All {slots} slots are busy and {maxQueue} requests already wait; try again later.");
            }
            try { await _gate.WaitAsync(cancel); }
            finally { Interlocked.Decrement(ref _queued); }
        }
        if (_free.TryTake(out var slot)) return slot;
        slot = new Slot(model.CreateSession(contextLength), _all.Count);
        _all.Enqueue(slot);
        return slot;
    }

    public void Release(Slot slot)
    {
        slot.Session.Reset();
        _free.Add(slot);
        _gate.Release();
    }

    public void Dispose()
    {
        foreach (var slot in _all) slot.Dispose();
        _gate.Dispose();
    }
}
