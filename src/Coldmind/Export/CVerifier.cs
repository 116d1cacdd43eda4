using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Coldmind.Export;

/// <summary>A Cortex-M the export is checked on under QEMU: its MPS2 board and its compiler flags.</summary>
public sealed record ArmCore(string Name, string Machine, string Flags)
{
    public static readonly ArmCore M7 =
        new("cortex-m7", "mps2-an500", "-mthumb -mcpu=cortex-m7 -mfpu=fpv5-d16 -mfloat-abi=hard");
    public static readonly ArmCore M3 = new("cortex-m3", "mps2-an385", "-mthumb -mcpu=cortex-m3 -mfloat-abi=soft");
}

/// <summary>
/// What one build of the export gave: each example's scores as raw 32-bit words (float bits, or int32 for the
/// integer program), and where measured the model's flash and RAM and the instructions an inference took.
/// </summary>
public sealed record CRun(string Target, uint[][] Scores, long? FlashBytes = null, long? StaticRamBytes = null,
    long? StackBytes = null,
    double? InstructionsPerInference = null, double? InstructionsPerTick = null)
{
    public int Count => Scores.Length;
    public int ArgMax(int example, bool integer)
    {
        var s = Scores[example];
        int best = 0;
        for (int c = 1; c < s.Length; c++)
            if (integer ? (int)s[c] > (int)s[best]
                    : BitConverter.UInt32BitsToSingle(s[c]) > BitConverter.UInt32BitsToSingle(s[best]))
                best = c;
        return best;
    }
}

/// <summary>
/// Builds an exported model with real compilers and runs it: on the host (the system cc, or clang, with
/// -std=c99 -Wall -Wextra -Werror -pedantic), under valgrind's callgrind for an instruction count, and on emulated
/// Cortex-M3 and M7 boards (arm-none-eabi-gcc with newlib, a startup file and linker script of our own,
/// semihosting for the inputs and the results, qemu-system-arm with -icount shift=0 so SysTick counts instructions).
/// The inputs stream from a file through semihosting, so a whole test split fits whatever the board's flash.
/// </summary>
public static class CVerifier
{
    public const string StrictFlags = "-std=c99 -Wall -Wextra -Werror -pedantic";

    /// <summary>
    /// Compiles model.c and example.c in <paramref name="exportDir"/> with <paramref name="compiler"/> and the strict
    /// flags (throws with the compiler's words).
    /// </summary>
    public static void CheckWarnings(string exportDir, string compiler, bool integer)
    {
        string build = NewBuildDir();
        exportDir = Path.GetFullPath(exportDir);
        string sources = $"{Q(Path.Combine(exportDir, "example.c"))} {Q(Path.Combine(exportDir, "model.c"))}";
        string binary = Q(Path.Combine(build, "example"));
        try { Run(compiler, $"{StrictFlags} -O2 -o {binary} {sources}{(integer ? "" : " -lm")}", build); }
        finally { Directory.Delete(build, true); }
    }

    /// <summary>
    /// Builds the export with the host's cc and runs <paramref name="inputs"/> (examples × inputs) through it.
    /// </summary>
    public static CRun Host(string exportDir, float[] inputs, int inputCount, bool integer, string compiler = "cc")
    {
        string build = NewBuildDir();
        exportDir = Path.GetFullPath(exportDir);
        try
        {
            WriteInputs(build, inputs);
            File.WriteAllText(Path.Combine(build, "harness.c"), Harness);
            Run(compiler, $"{StrictFlags} -O2 -I{Q(exportDir)} -o harness harness.c "
                + $"{Q(Path.Combine(exportDir, "model.c"))} -lm",
                build);
            string output = Run(Path.Combine(build, "harness"), "", build);
            return new CRun($"host ({compiler})", Parse(output, inputs.Length / inputCount, out _));
        }
        finally { Directory.Delete(build, true); }
    }

    /// <summary>
    /// Instructions the host runs inside cm_predict (or cm_predict_int8), by callgrind, per inference, over up to
    /// <paramref name="examples"/> examples.
    /// </summary>
    public static double Callgrind(string exportDir, float[] inputs, int inputCount, bool integer, int examples = 200)
    {
        string build = NewBuildDir();
        exportDir = Path.GetFullPath(exportDir);
        try
        {
            int n = Math.Min(examples, inputs.Length / inputCount);
            WriteInputs(build, inputs.AsSpan(0, n * inputCount).ToArray());
            File.WriteAllText(Path.Combine(build, "harness.c"), Harness);
            Run("cc", $"{StrictFlags} -O2 -fno-inline-functions-called-once -I{Q(exportDir)} -o harness harness.c "
                + $"{Q(Path.Combine(exportDir, "model.c"))} -lm", build);
            string entry = integer ? "cm_predict_int8" : "cm_predict";
            Run("valgrind", $"--tool=callgrind --callgrind-out-file=cg.out --toggle-collect={entry} ./harness", build);
            var totals = File.ReadLines(Path.Combine(build, "cg.out"))
                .First(l => l.StartsWith("totals:", StringComparison.Ordinal)
                    || l.StartsWith("summary:", StringComparison.Ordinal));
            return Number(totals.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / n;
        }
        finally { Directory.Delete(build, true); }
    }

    /// <summary>
    /// Builds the export for <paramref name="core"/>, runs it under QEMU, and measures flash, RAM and instructions.
    /// </summary>
    public static CRun Qemu(string exportDir, ArmCore core, float[] inputs, int inputCount, bool integer,
        TimeSpan? timeout = null)
    {
        string build = NewBuildDir();
        exportDir = Path.GetFullPath(exportDir);
        try
        {
            WriteInputs(build, inputs);
            File.WriteAllText(Path.Combine(build, "harness.c"), Harness);
            File.WriteAllText(Path.Combine(build, "startup.c"), Startup);
            File.WriteAllText(Path.Combine(build, "link.ld"), LinkerScript);
            string model = Path.Combine(exportDir, "model.c");
            Run("arm-none-eabi-gcc", $"{core.Flags} {StrictFlags} -O2 -c -o model.o {Q(model)}", build);
            // text includes rodata (the const weights); data is both flash (its initial values) and RAM
            var size = Run("arm-none-eabi-size", "model.o", build).Split('\n')[1]
                .Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).Take(3).Select(Number).ToArray();
            long text = (long)size[0], data = (long)size[1], bss = (long)size[2];
            Run("arm-none-eabi-gcc", $"{core.Flags} -O2 -DCM_ARM -I{Q(exportDir)} --specs=rdimon.specs -nostartfiles "
                + "-T link.ld "
                + "-o model.elf startup.c harness.c model.o -lm", build);
            string output = Run("qemu-system-arm", $"-M {core.Machine} -nographic -monitor none -serial none "
                + "-semihosting-config enable=on,target=native -icount shift=0 -kernel model.elf",
                build, timeout ?? TimeSpan.FromMinutes(20));
            var scores = Parse(output, inputs.Length / inputCount, out var info);
            double perTick = Number(info["calibration"][1]) / Number(info["calibration"][0]);
            double ticks = Number(info["ticks"][0]) / Math.Max(1, scores.Length);
            return new CRun($"qemu {core.Machine} ({core.Name})", scores, text + data, data + bss,
                (long)Number(info["stack"][0]),
                ticks * perTick, perTick);
        }
        finally { Directory.Delete(build, true); }
    }

    private static string NewBuildDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"coldmind-c-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void WriteInputs(string build, float[] inputs)
    {
        var bytes = new byte[inputs.Length * 4];
        Buffer.BlockCopy(inputs, 0, bytes, 0, bytes.Length);
        File.WriteAllBytes(Path.Combine(build, "inputs.bin"), bytes);
    }

    /// <summary>The harness's lines: "S w0 w1 …" a result each (hex words), "I key values…" a measurement.
    /// </summary>
    private static uint[][] Parse(string output, int expected, out Dictionary<string, string[]> info)
    {
        var scores = new List<uint[]>();
        info = [];
        foreach (var line in output.Split('\n'))
        {
            var parts = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length > 1 && parts[0] == "S")
                scores.Add(parts.Skip(1)
                    .Select(p => uint.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray());
            else if (parts.Length > 1 && parts[0] == "I") info[parts[1]] = parts[2..];
        }
        if (scores.Count != expected)
            throw new ColdmindException(
                $"The C build gave {scores.Count} results for {expected} inputs; its output ends: "
                    + string.Concat(output.TakeLast(400)));
        return scores.ToArray();
    }

    private static string Q(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static double Number(string text) => double.Parse(text, CultureInfo.InvariantCulture);
    
    /// <summary>
    /// Runs a tool (through sh, for the quoting); its stdout, or a ColdmindException naming what failed and what it
    /// said.
    /// </summary>
    private static string Run(string tool, string arguments, string directory, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo("sh", ["-c", $"{Q(tool)} {arguments}"])
        {
            WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try { process = Process.Start(info)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ColdmindException($"Cannot run {tool}: {e.Message}");
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                throw new ColdmindException(
                    $"{tool} did not finish within {(timeout ?? TimeSpan.FromMinutes(5)).TotalMinutes:0} minutes.");
            }
            string output = stdout.Result, errors = stderr.Result;
            if (process.ExitCode == 127)
                throw new ColdmindException($"{tool} is not installed; on Debian: apt-get install {Package(tool)}.");
            if (process.ExitCode != 0)
                throw new ColdmindException(
                    $"{tool} {arguments} failed (exit {process.ExitCode}): "
                        + string.Concat((errors + output).Take(2000)).Trim());
            return output;
        }
    }

    private static string Package(string tool) => tool switch
    {
        "arm-none-eabi-gcc" or "arm-none-eabi-size" => "gcc-arm-none-eabi libnewlib-arm-none-eabi",
        "qemu-system-arm" => "qemu-system-arm",
        "cc" => "gcc",
        _ => tool,
    };

    /// <summary>
    /// Reads float inputs from inputs.bin until it ends and prints each result's scores as hex words. On the board
    /// (CM_ARM) it also counts SysTick ticks around each inference (calibrated against a loop of known instruction
    /// count, since QEMU's -icount ties the tick to instructions), and measures the stack one inference uses by
    /// painting the stack below it first.
    /// </summary>
    private const string Harness = """
        #include <stdio.h>
        #include <stdint.h>
        #include <string.h>
        #include "model.h"

        static float input[CM_INPUTS];
        #ifdef CM_FPU_NONE
        static int8_t quantized[CM_INPUTS];
        static int32_t scores[CM_CLASSES];
        #define PREDICT() cm_predict_int8(quantized, scores)
        #else
        static float scores[CM_CLASSES];
        #define PREDICT() cm_predict(input, scores)
        #endif

        #ifdef CM_ARM
        #define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
        #define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
        #define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
        #define PAINTED 32768u
        static uint32_t ticks(void) { return SYST_CVR; }
        static uint32_t elapsed(uint32_t start) { return (start - SYST_CVR) & 0xFFFFFFu; }

        /* Paints the stack below this frame, runs one inference, returns the bytes it overwrote. */
        static uint32_t __attribute__((noinline)) stack_of_one_inference(void)
        {
            uint32_t sp, *p, *bottom;
            __asm__ volatile ("mov %0, sp" : "=r"(sp));
            bottom = (uint32_t *)(sp - PAINTED);
            for (p = bottom; p < (uint32_t *)sp; p++) *p = 0xC01DC0DEu;
            PREDICT();
            for (p = bottom; p < (uint32_t *)sp && *p == 0xC01DC0DEu; p++) {}
            return sp - (uint32_t)p;
        }

        /* 2 instructions (subs, bne) an iteration */
        static uint32_t __attribute__((noinline)) calibrate(uint32_t n)
        {
            uint32_t start = ticks();
            __asm__ volatile ("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
            return elapsed(start);
        }
        #endif

        int main(void)
        {
            FILE *f = fopen("inputs.bin", "rb");
            uint32_t c;
        #ifdef CM_ARM
            uint64_t total = 0;
            int first = 1;
            SYST_RVR = 0xFFFFFFu;
            SYST_CVR = 0u;
            SYST_CSR = 5u;
            printf("I calibration %lu 2000000\n", (unsigned long)calibrate(1000000u));
        #endif
            if (f == NULL) { printf("E cannot open inputs.bin\n"); return 2; }
            while (fread(input, sizeof input[0], CM_INPUTS, f) == CM_INPUTS) {
        #ifdef CM_FPU_NONE
                cm_quantize(input, quantized);
        #endif
        #ifdef CM_ARM
                if (first) { printf("I stack %lu\n", (unsigned long)stack_of_one_inference()); first = 0; }
                {
                    uint32_t start = ticks();
                    PREDICT();
                    total += elapsed(start);
                }
        #else
                PREDICT();
        #endif
                printf("S");
                for (c = 0; c < CM_CLASSES; c++) {
                    uint32_t w;
                    memcpy(&w, &scores[c], sizeof w);
                    printf(" %08lx", (unsigned long)w);
                }
                printf("\n");
            }
        #ifdef CM_ARM
            printf("I ticks %llu\n", (unsigned long long)total);
        #endif
            fclose(f);
            return 0;
        }

        """;

    /// <summary>
    /// Vector table (16 entries), reset handler: copy .data, zero .bss, FPU on (CPACR) when the core has one,
    /// semihosting, main.
    /// </summary>
    private const string Startup = """
        #include <stdint.h>
        #include <stdlib.h>

        extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
        extern int main(void);
        extern void initialise_monitor_handles(void);
        void Reset_Handler(void);
        static void Default_Handler(void) { for (;;) {} }
        typedef void (*Vector)(void);

        __attribute__((section(".vectors"), used)) static const Vector vectors[16] = {
            (Vector)&_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
            Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
        };

        void Reset_Handler(void)
        {
            uint32_t *src = &_sidata, *dst = &_sdata;
            while (dst < &_edata) *dst++ = *src++;
            for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0u;
        #ifdef __ARM_FP
            *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
            __asm__ volatile ("dsb\n isb");
        #endif
            initialise_monitor_handles();
            exit(main());
        }

        void _init(void) {}
        void _fini(void) {}

        """;

    /// <summary>
    /// MPS2 boards: 4 MB at 0x00000000 (code, read-only data) and 4 MB at 0x20000000 (data, bss, heap, stack).
    /// </summary>
    private const string LinkerScript = """
        MEMORY
        {
            FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
            RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M
        }
        ENTRY(Reset_Handler)
        SECTIONS
        {
            .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) KEEP(*(.init)) KEEP(*(.fini)) . = ALIGN(4); } > FLASH
            .ARM.exidx : { *(.ARM.exidx*) } > FLASH
            .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
            _sidata = LOADADDR(.data);
            .bss (NOLOAD) : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
            end = .;
            _end = .;
            _estack = ORIGIN(RAM) + LENGTH(RAM);
        }

        """;
}
