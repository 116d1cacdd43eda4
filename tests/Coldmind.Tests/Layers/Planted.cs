// A deliberate violation for ArchitectureTests.APlantedUpwardReferenceIsCaught: a type claiming the Kernels room
// that calls into the Shrink room. Both live in the test assembly, so the library stays clean.
namespace Coldmind.Kernels.Planted
{
    public static class Kernel
    {
        public static int Run() => Coldmind.Shrink.Planted.Pipeline.Stages();
    }
}

namespace Coldmind.Shrink.Planted
{
    public static class Pipeline
    {
        public static int Stages() => 3;
    }
}
