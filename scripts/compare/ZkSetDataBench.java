// setData load against a ZooKeeper ensemble with a fixed number of requests in flight, for
// scripts/compare/zookeeper.mjs. Compiled there with javac against Debian's /usr/share/java/zookeeper.jar.
//
// The same load as `consensus-cli bench --op put`: `--in-flight` workers, each with one request outstanding
// (issue, wait for the answer, issue the next), over `--keys` existing znodes (bench/<n mod keys>),
// `--value-size`-byte values, a warm-up that is run and not counted, then `--duration-ms` measured. The
// workers share `--sessions` sessions (worker w uses session w mod sessions), all to the servers in
// `--connect`. Uses the asynchronous API, so one client thread per session drives all of its workers; the
// process' own CPU time over the measured window is printed, to show whether the client is the bottleneck.
//
// Prints one JSON line: ops, errors, opsPerSec, latencyMs {p50, p90, p99, max, mean}, clientCpuPercent
// (CPU time of this JVM over the measured window / wall time, 100 = one core), wallMs.

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public final class ZkSetDataBench {
  private static final String ROOT = "/bench";

  /** Latencies of one session's answers: appended only on that session's event thread. */
  private static final class Recorder {
    long[] nanos = new long[1 << 16];
    int count;
    long errors;

    void add(long ns) {
      if (count == nanos.length) nanos = Arrays.copyOf(nanos, count * 2);
      nanos[count++] = ns;
    }
  }

  private final ZooKeeper[] sessions;
  private final Recorder[] recorders;
  private final byte[] value;
  private final int keys;
  private final AtomicLong next = new AtomicLong();
  private volatile long startAt;
  private volatile long endAt;

  private ZkSetDataBench(ZooKeeper[] sessions, int valueSize, int keys) {
    this.sessions = sessions;
    this.recorders = new Recorder[sessions.length];
    for (int i = 0; i < sessions.length; i++) recorders[i] = new Recorder();
    this.value = new byte[valueSize];
    Arrays.fill(value, (byte) 'x');
    this.keys = keys;
  }

  /** One worker's chain: each answer (on the session's event thread) records and issues the next request. */
  private void issue(int session, CountDownLatch done) {
    long t0 = System.nanoTime();
    if (t0 >= endAt) {
      done.countDown();
      return;
    }
    String path = ROOT + "/" + (next.getAndIncrement() % keys);
    AsyncCallback.StatCallback cb =
        (int rc, String p, Object ctx, Stat stat) -> {
          long t1 = System.nanoTime();
          if (t0 >= startAt) {
            if (rc == KeeperException.Code.OK.intValue()) recorders[session].add(t1 - t0);
            else recorders[session].errors++;
          }
          issue(session, done);
        };
    sessions[session].setData(path, value, -1, cb, null);
  }

  private static ZooKeeper connect(String connect) throws Exception {
    CountDownLatch connected = new CountDownLatch(1);
    ZooKeeper zk =
        new ZooKeeper(
            connect,
            30_000,
            (event) -> {
              if (event.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
            });
    if (!connected.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("no session to " + connect + " within 30 s");
    return zk;
  }

  /** Creates ROOT and its `keys` children (those that exist are kept), all creates issued at once. */
  private static void prepare(ZooKeeper zk, int keys, byte[] value) throws Exception {
    try {
      zk.create(ROOT, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
    } catch (KeeperException.NodeExistsException e) {
      // a second run against the same ensemble
    }
    CountDownLatch created = new CountDownLatch(keys);
    AtomicLong failed = new AtomicLong();
    for (int i = 0; i < keys; i++) {
      zk.create(
          ROOT + "/" + i,
          value,
          ZooDefs.Ids.OPEN_ACL_UNSAFE,
          CreateMode.PERSISTENT,
          (int rc, String p, Object ctx, String name) -> {
            if (rc != KeeperException.Code.OK.intValue() && rc != KeeperException.Code.NODEEXISTS.intValue()) failed.incrementAndGet();
            created.countDown();
          },
          null);
    }
    if (!created.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("creating " + keys + " znodes took over 60 s");
    if (failed.get() > 0) throw new IllegalStateException(failed.get() + " of " + keys + " creates failed");
  }

  private static long processCpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
  }

  private static int intArg(String name, String v, int min, int max) {
    int n;
    try {
      n = Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " must be an integer, got " + v);
    }
    if (n < min || n > max) throw new IllegalArgumentException(name + " must be from " + min + " to " + max + ", got " + n);
    return n;
  }

  public static void main(String[] args) throws Exception {
    String connect = null;
    int inFlight = 64, sessionCount = 1, valueSize = 256, keys = 1000, warmupMs = 2000, durationMs = 10_000;
    for (int i = 0; i + 1 < args.length; i += 2) {
      String v = args[i + 1];
      switch (args[i]) {
        case "--connect" -> connect = v;
        case "--in-flight" -> inFlight = intArg("--in-flight", v, 1, 4096);
        case "--sessions" -> sessionCount = intArg("--sessions", v, 1, 256);
        case "--value-size" -> valueSize = intArg("--value-size", v, 0, 1 << 20);
        case "--keys" -> keys = intArg("--keys", v, 1, 1_000_000);
        case "--warmup-ms" -> warmupMs = intArg("--warmup-ms", v, 0, 600_000);
        case "--duration-ms" -> durationMs = intArg("--duration-ms", v, 100, 3_600_000);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (args.length % 2 != 0) throw new IllegalArgumentException("options come in pairs: --name value");
    if (connect == null) throw new IllegalArgumentException("--connect host:port[,host:port...] is required");
    sessionCount = Math.min(sessionCount, inFlight);

    ZooKeeper[] sessions = new ZooKeeper[sessionCount];
    for (int i = 0; i < sessionCount; i++) sessions[i] = connect(connect);
    try {
      ZkSetDataBench b = new ZkSetDataBench(sessions, valueSize, keys);
      prepare(sessions[0], keys, b.value);
      long now = System.nanoTime();
      b.startAt = now + TimeUnit.MILLISECONDS.toNanos(warmupMs);
      b.endAt = b.startAt + TimeUnit.MILLISECONDS.toNanos(durationMs);
      CountDownLatch done = new CountDownLatch(inFlight);
      for (int w = 0; w < inFlight; w++) b.issue(w % sessionCount, done);
      // CPU time over the measured window only (the warm-up includes the JIT's own work).
      long untilStart = b.startAt - System.nanoTime();
      if (untilStart > 0) TimeUnit.NANOSECONDS.sleep(untilStart);
      long cpu0 = processCpuNanos();
      long wall0 = System.nanoTime();
      if (!done.await(warmupMs + durationMs + 60_000L, TimeUnit.MILLISECONDS)) throw new IllegalStateException("requests still unanswered 60 s after the run's end");
      long wallNs = System.nanoTime() - wall0;
      long cpuNs = processCpuNanos() - cpu0;

      List<long[]> parts = new ArrayList<>();
      int total = 0;
      long errors = 0;
      for (Recorder r : b.recorders) {
        parts.add(Arrays.copyOf(r.nanos, r.count));
        total += r.count;
        errors += r.errors;
      }
      long[] all = new long[total];
      int at = 0;
      for (long[] p : parts) {
        System.arraycopy(p, 0, all, at, p.length);
        at += p.length;
      }
      Arrays.sort(all);
      double sum = 0;
      for (long x : all) sum += x;
      // Measured window: from startAt to the last worker's end (as consensus-cli bench does).
      double measuredMs = wallNs / 1e6;
      System.out.println(
          String.format(
              java.util.Locale.ROOT,
              "{\"ops\":%d,\"errors\":%d,\"opsPerSec\":%d,\"latencyMs\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f},\"clientCpuPercent\":%.1f,\"wallMs\":%d,\"sessions\":%d,\"inFlight\":%d}",
              total,
              errors,
              Math.round(total / (measuredMs / 1000)),
              q(all, 0.5),
              q(all, 0.9),
              q(all, 0.99),
              total == 0 ? 0 : all[total - 1] / 1e6,
              total == 0 ? 0 : sum / total / 1e6,
              100.0 * cpuNs / wallNs,
              Math.round(measuredMs),
              sessionCount,
              inFlight));
    } finally {
      for (ZooKeeper zk : sessions) zk.close(1000);
    }
  }

  private static double q(long[] sorted, double p) {
    if (sorted.length == 0) return 0;
    return sorted[Math.min(sorted.length - 1, (int) Math.floor(p * sorted.length))] / 1e6;
  }
}
