namespace Coldmind.Numerics;

/// <summary>
/// A persistent pool of worker threads for kernels. The caller's thread is worker 0 and the pool
/// owns threads 1..N-1, which spin for up to <see cref="SpinMicroseconds"/> after a job (training
/// and decoding issue kernels back to back) and then sleep; past 20 µs a spinning thread yields, so a pool does not
/// starve its own workers, or another process, of cores on a busy machine: an empty dispatch measured under 2 µs here,
/// where Parallel.For costs 26–120 µs (performance-notes.md), which matters for per-token matrix–vector work.
/// Work is split statically (worker w runs parts w, w+N, …) so a result never depends on timing.
/// A job started from inside a job runs inline on the calling worker.
/// </summary>
public sealed class WorkerPool : IDisposable
{
    private static WorkerPool _shared = new(Environment.ProcessorCount);

    /// <summary>The pool every kernel uses unless told otherwise; replace it to change the thread count (the old pool is disposed).</summary>
    public static WorkerPool Shared
    {
        get => _shared;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            var old = Interlocked.Exchange(ref _shared, value);
            if (!ReferenceEquals(old, value)) old.Dispose();
        }
    }

    [ThreadStatic] private static bool _insideJob;


    private readonly ManualResetEventSlim[] _go;
    private readonly object _dispatch = new();
    private const int SpinMicroseconds = 500;
    /// <summary>Spinning past this yields the core (Thread.Yield returns at once when no other thread wants it).</summary>
    private static readonly long YieldTicks = System.Diagnostics.Stopwatch.Frequency * 20 / 1_000_000;
    private Action<int>? _job;
    private int _parts;
    private int _pending;
    private Exception? _error;
    private volatile bool _disposed;

    public int Threads { get; }

    /// <summary>How many parts are worth splitting work into here: 1 inside a job (a nested job runs inline), else <see cref="Threads"/>.</summary>
    public int AvailableThreads => _insideJob ? 1 : Threads;

    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ColdmindException($"A worker pool needs at least 1 thread, got {threads}.");
        Threads = threads;
        _go = new ManualResetEventSlim[threads - 1];
        for (int i = 0; i < _go.Length; i++)
        {
            _go[i] = new ManualResetEventSlim(false, spinCount: 2000);
            int worker = i + 1;
            new Thread(() => WorkerLoop(worker)) { IsBackground = true, Name = $"coldmind-worker-{worker}" }.Start();
        }
    }

    /// <summary>Runs body(part) for part in [0, parts), spread over the pool; returns when all are done.</summary>
    public void Run(int parts, Action<int> body)
    {
        if (parts <= 0) return;
        if (parts == 1 || Threads == 1 || _insideJob)
        {
            for (int p = 0; p < parts; p++) body(p);
            return;
        }
        lock (_dispatch)
        {
            _job = body;
            _parts = parts;
            int active = Math.Min(Threads, parts);
            Volatile.Write(ref _pending, active - 1);
            for (int w = 1; w < active; w++) _go[w - 1].Set();
            try { RunShare(0, body, parts); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            // Busy-wait: the other parts take about as long as ours. Past a few microseconds, yield instead: on a
            // busy machine (another process, two pools) the worker we wait for may need this very core.
            long yieldAt = System.Diagnostics.Stopwatch.GetTimestamp() + YieldTicks;
            while (Volatile.Read(ref _pending) != 0)
                if (System.Diagnostics.Stopwatch.GetTimestamp() < yieldAt) Thread.SpinWait(8);
                else Thread.Yield();
            _job = null;
            var error = Interlocked.Exchange(ref _error, null);
            if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        }
    }

    private void RunShare(int worker, Action<int> body, int parts)
    {
        _insideJob = true;
        try
        {
            for (int p = worker; p < parts; p += Threads) body(p);
        }
        finally { _insideJob = false; }
    }

    private void WorkerLoop(int worker)
    {
        var go = _go[worker - 1];
        long spinTicks = System.Diagnostics.Stopwatch.Frequency * SpinMicroseconds / 1_000_000;
        while (true)
        {
            // Spin while jobs are likely to follow quickly, yielding to any thread that wants the core, then sleep on the event.
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (long now = start; !go.IsSet && now - start < spinTicks; now = System.Diagnostics.Stopwatch.GetTimestamp())
                if (now - start < YieldTicks) Thread.SpinWait(20);
                else Thread.Yield();
            go.Wait();
            go.Reset();
            if (_disposed) return;
            try { RunShare(worker, _job!, _parts); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            finally { Interlocked.Decrement(ref _pending); }
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var g in _go) g.Set();
    }
}
