// Waiting on a condition with a deadline: never a bare sleep.
using System.Diagnostics;

namespace Mailman.TestSupport;

public static class Wait
{
    /// <exception cref="TimeoutException">The condition did not hold before the deadline.</exception>
    public static void Until(Func<bool> condition, TimeSpan timeout, string what) => Until(condition, timeout, what, null);

    /// <summary>As <see cref="Until(Func{bool}, TimeSpan, string)"/>; on timeout the message ends with what <paramref name="state"/> says then.</summary>
    /// <exception cref="TimeoutException">The condition did not hold before the deadline.</exception>
    public static void Until(Func<bool> condition, TimeSpan timeout, string what, Func<string>? state)
    {
        var watch = Stopwatch.StartNew();
        var spin = new SpinWait();
        while (!condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:F0}s waiting for {what}" + (state is null ? "" : "; " + state()));
            }

            // Yield the CPU between checks; this is a poll on a condition, not a sleep standing in for one.
            if (spin.NextSpinWillYield)
            {
                Thread.Sleep(20);
            }
            else
            {
                spin.SpinOnce();
            }
        }
    }

    /// <summary>Waits until <paramref name="probe"/> returns a value, and returns it.</summary>
    /// <exception cref="TimeoutException">Nothing came before the deadline.</exception>
    public static T For<T>(Func<T?> probe, TimeSpan timeout, string what)
        where T : class
    {
        T? value = null;
        Until(() => (value = probe()) is not null, timeout, what);
        return value!;
    }
}
