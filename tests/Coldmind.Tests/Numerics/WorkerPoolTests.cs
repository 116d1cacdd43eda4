using Xunit;
using Coldmind.Numerics;

namespace Coldmind.Tests;

public class WorkerPoolTests
{
    [Fact]
    public void Runs_every_part_exactly_once_and_nested_jobs_inline()
    {
        using var pool = new WorkerPool(3);
        var hits = new int[100];
        pool.Run(100, p =>
        {
            Interlocked.Increment(ref hits[p]);
            pool.Run(2, _ => { }); // nested: runs inline, must not deadlock
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void A_failing_part_surfaces_on_the_caller_and_the_pool_keeps_working()
    {
        using var pool = new WorkerPool(2);
        // Part 0 runs on the calling thread, part 1 on a worker: both kinds of failure must surface.
        foreach (int failing in new[] { 0, 1 })
            Assert.ThrowsAny<Exception>(() => pool.Run(4, p => { if (p == failing) throw new InvalidOperationException("boom"); }));
        int count = 0;
        pool.Run(4, _ => Interlocked.Increment(ref count));
        Assert.Equal(4, count);
    }
}
