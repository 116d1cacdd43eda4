namespace Coldmind.Cost;

/// <summary>
/// What the device is asked to do: <see cref="Rate"/> inferences (or tokens) a second while on; on for
/// <see cref="DutyCycle"/> of every <see cref="PeriodSeconds"/> (1: always on), off (idle) the rest.
/// </summary>
public sealed record ModalLoad(double Rate, double AmbientCelsius, double DurationSeconds, double DutyCycle = 1, double PeriodSeconds = 60)
{
    public double MeanRate => Rate * DutyCycle;

    internal void Check(DeviceProfile device)
    {
        if (!(Rate > 0) || !double.IsFinite(Rate)) throw new ColdmindException($"The rate must be positive, got {Rate}.");
        if (!(DurationSeconds > 0) || DurationSeconds > 10 * 365.25 * 86400) throw new ColdmindException($"The duration must be positive and at most ten years, got {DurationSeconds} s.");
        if (!(DutyCycle > 0 && DutyCycle <= 1)) throw new ColdmindException($"The duty cycle must be in (0, 1], got {DutyCycle}.");
        if (!(PeriodSeconds > 0)) throw new ColdmindException($"The period must be positive, got {PeriodSeconds} s.");
        if (!(AmbientCelsius > -273.15) || AmbientCelsius >= device.ThrottleCelsius)
            throw new ColdmindException($"An ambient of {AmbientCelsius} °C leaves no headroom: '{device.Name}' throttles at {device.ThrottleCelsius} °C.");
    }
}

/// <summary>One moment of the simulation: die temperature, clock, work done per second, power, and energies so far.</summary>
public sealed record ModalSample(double Seconds, double Celsius, double Hertz, double Throughput, double Watts,
    double ComputeJoules, double MemoryJoules, double IdleJoules, double? BatteryJoules);

/// <summary>
/// The verdict. <see cref="Passes"/>: the requested rate sustained to the end with no throttling, no overheating
/// and, on a battery, power left.
/// </summary>
public sealed record ModalVerdict(ModalLoad Load, DeviceProfile Device, double SustainedRate, double? TimeToThrottleSeconds, double MaxCelsius,
    bool Overheated, double? BatteryEmptySeconds, double? BatteryLifeSeconds, double Joules, IReadOnlyList<ModalSample> Series)
{
    public bool Passes => TimeToThrottleSeconds == null && !Overheated && BatteryEmptySeconds == null && SustainedRate >= 0.99 * Load.MeanRate;

    public string Reason =>
        Overheated ? $"overheats: above {Device.ThrottleCelsius} °C at its slowest clock"
        : TimeToThrottleSeconds is { } t ? $"throttles after {t:F1} s"
        : BatteryEmptySeconds is { } b ? $"the battery is empty after {b:F0} s"
        : SustainedRate < 0.99 * Load.MeanRate ? $"sustains {SustainedRate:G3}/s of the {Load.MeanRate:G3}/s asked"
        : "sustains the load, cool";
}

/// <summary>
/// The "modal": a lumped RC thermal model of the device (C·dT/dt = P − (T − T_ambient)/R, stepped with its exact
/// solution for constant power over each step), DVFS that steps the clock down when the die reaches the throttle
/// temperature and back up once it has cooled by the hysteresis, and a battery drained by the power and refilled
/// by harvest. Power while on is idle power for the idle share of the time plus the energy of the inferences
/// served (at the current DVFS step's cost); every joule becomes heat in the device. Deterministic.
/// </summary>
public static class Modal
{
    public static ModalVerdict Simulate(Workload workload, DeviceProfile device, ModalLoad load, int samples = 2000)
    {
        load.Check(device);
        var costs = Enumerable.Range(0, device.Dvfs.Count).Select(s => CostModel.Estimate(workload, device, load.AmbientCelsius, s)).ToArray();
        double tau = device.ThermalTimeConstant, onSeconds = load.PeriodSeconds * load.DutyCycle;
        // resolve the thermal time constant, the on/off segments and the plot
        double dt = Math.Min(load.DurationSeconds / samples, tau / 20);
        if (load.DutyCycle < 1) dt = Math.Min(dt, Math.Min(onSeconds, load.PeriodSeconds - onSeconds) / 4);
        long steps = (long)Math.Ceiling(load.DurationSeconds / dt);
        if (steps > 50_000_000) throw new ColdmindException($"The simulation would take {steps:N0} steps: shorten --duration or lengthen --period.");
        dt = load.DurationSeconds / steps;
        long every = Math.Max(1, steps / samples);
        double decay = Math.Exp(-dt / tau);

        double celsius = load.AmbientCelsius, maxCelsius = celsius, battery = device.BatteryJoules;
        double computeJ = 0, memoryJ = 0, idleJ = 0, served = 0, tailServed = 0, tailTime = 0;
        int step = 0;
        double? throttledAt = null, emptyAt = null;
        bool overheated = false;
        var series = new List<ModalSample>();
        for (long i = 0; i < steps; i++)
        {
            double t = i * dt;
            bool on = emptyAt == null && (load.DutyCycle >= 1 || (t % load.PeriodSeconds) < onSeconds);
            var cost = costs[step];
            double throughput = on ? Math.Min(load.Rate, 1 / cost.Seconds) : 0;
            double busyShare = throughput * cost.Seconds;
            double idleWatts = emptyAt == null ? device.IdleWatts * (1 - busyShare) : 0;
            double watts = idleWatts + throughput * cost.Joules;
            computeJ += throughput * cost.ComputeJoules * dt;
            memoryJ += throughput * cost.MemoryJoules * dt;
            idleJ += idleWatts * dt;
            served += throughput * dt;
            if (t >= 0.9 * load.DurationSeconds) { tailServed += throughput * dt; tailTime += dt; }

            double steady = load.AmbientCelsius + watts * device.CelsiusPerWatt;
            celsius = steady + (celsius - steady) * decay;
            maxCelsius = Math.Max(maxCelsius, celsius);
            if (device.BatteryJoules > 0 && emptyAt == null)
            {
                battery = Math.Min(device.BatteryJoules, battery - (watts - device.HarvestWatts) * dt);
                if (battery <= 0) { battery = 0; emptyAt = t + dt; }
            }
            // throttle when the die is at its limit and the present power would push it further
            if (celsius >= device.ThrottleCelsius && steady >= device.ThrottleCelsius)
            {
                throttledAt ??= t + dt;
                if (step + 1 < device.Dvfs.Count) step++;
                else if (on) overheated = true;
            }
            else if (step > 0 && celsius <= device.ThrottleCelsius - device.HysteresisCelsius) step--;
            if (i % every == 0 || i == steps - 1)
                series.Add(new ModalSample(t + dt, celsius, device.Dvfs[step].Hertz, throughput, watts, computeJ, memoryJ, idleJ,
                    device.BatteryJoules > 0 ? battery : null));
        }
        // the rate over whole periods at the end (duty-cycled loads average over the period)
        double sustained = load.DutyCycle < 1 ? served / load.DurationSeconds : tailServed / tailTime;
        double net = (computeJ + memoryJ + idleJ) / load.DurationSeconds - device.HarvestWatts;
        double? life = device.BatteryJoules <= 0 ? null : emptyAt ?? (net > 0 ? load.DurationSeconds + battery / net : double.PositiveInfinity);
        return new ModalVerdict(load, device, sustained, throttledAt, maxCelsius, overheated, emptyAt, life, computeJ + memoryJ + idleJ, series);
    }
}
