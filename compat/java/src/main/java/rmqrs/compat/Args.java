package rmqrs.compat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** The command line: flags in order as given; a flag in {@link #SWITCHES} takes no value. */
final class Args {
    static final String USAGE = String.join("\n",
        "usage: java -jar driver.jar COMMAND [flags]",
        "",
        "  version",
        "  produce -n NS -t TOPIC -c COUNT [--mode sync|async|oneway|batch|ordered]",
        "          [--group G] [--tag T]... [--key K] [--prop k=v]... [--body-bytes B]",
        "          [--delay-level L] [--vip] [--no-compress] [--order-keys N] [--retries R]",
        "          [--timeout-ms MS] [--interval-ms MS]",
        "  consume -n NS -t TOPIC -g GROUP --expect N --timeout-secs S [--expr EXPR | --sql SQL]",
        "          [--linger-ms MS] [--orderly] [--broadcast] [--instances I]",
        "          [--stop-instance-after N] [--fail-first K | --fail-always --expect-refusals R]",
        "          [--max-reconsume-times M] [--consume-delay-ms MS] [--threads T]",
        "          [--from first|last] [--vip] [--pop]",
        "  pull    -n NS -t TOPIC -g GROUP --expect N --timeout-secs S [--mode subscribe|assign]",
        "          [--expr EXPR] [--linger-ms MS] [--seek OFFSET | --seek-begin | --seek-end]",
        "          [--commit] [--pause-ms MS] [--from first|last]",
        "  request -n NS -t TOPIC -c COUNT [--group G] [--timeout-ms MS]",
        "  admin   -n NS ACTION [flags]   (ACTION: cluster, route, topic-list, topic-stats,",
        "          consume-stats, query-key, view, offsets, reset-offset, consumer-info,",
        "          producer-info, wipe-write-perm, add-write-perm, broker-config,",
        "          update-broker-config, broker-stats, stats-data, create-group, delete-group,",
        "          set-consume-mode,",
        "          create-topic, delete-topic, consumed-by, clone-offset, system-topics;",
        "          flags per action in Admin.java)",
        "  transaction -n NS -t TOPIC [--group G] [--timeout-secs S] [--linger-ms MS]",
        "  timer   -n NS -t TOPIC -c COUNT [--group G] [--first-ms MS] [--step-ms MS] [--recall]",
        "          [--timeout-secs S] [--linger-ms MS]",
        "  notify  -b BROKER_ADDR -t TOPIC --group G [--queue Q] [--poll-ms MS] [--order]",
        "          [--polling-info]   (5.x only)",
        "",
        "Every outcome is one JSON object per line on stdout; logs go to stderr (system property",
        "driver.log.level, WARN by default). Exit 0 on success, 1 on a failure (a `failed` line",
        "says why, with the broker's response code when there is one), 2 on a usage error.",
        "produce: message SEQ (0-based) has the body `TOPIC:SEQ:` padded with a-z to B bytes,",
        "the tag number SEQ mod (number of --tag), the key `K-SEQ`, the user property seq=SEQ",
        "and every --prop.");

    /** Flags that take no value. */
    private static final Set<String> SWITCHES = new HashSet<>(Arrays.asList(
        "--vip", "--no-compress", "--orderly", "--broadcast", "--fail-always", "--commit",
        "--seek-begin", "--seek-end", "--force", "--with-consumer", "--no-fallback", "--recall",
        "--pop", "--order", "--polling-info"));

    /** Raised for a bad command line (exit code 2). */
    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }

    final String command;
    /** Positional words after the command (the admin action). */
    final List<String> words = new ArrayList<>();
    private final List<String[]> given = new ArrayList<>();

    Args(String[] argv) {
        if (argv.length == 0) {
            throw new UsageException("no command");
        }
        command = argv[0];
        for (int i = 1; i < argv.length; i++) {
            String flag = argv[i];
            if (!flag.startsWith("-")) {
                // Anywhere on the line: `admin -n NS ACTION` and `admin ACTION -n NS` alike.
                words.add(flag);
                continue;
            }
            if (SWITCHES.contains(flag)) {
                given.add(new String[] {flag, null});
                continue;
            }
            if (i + 1 >= argv.length) {
                throw new UsageException(flag + " needs a value");
            }
            given.add(new String[] {flag, argv[++i]});
        }
    }

    /** Fails on any flag not in {@code known}. */
    void only(String... known) {
        Set<String> allowed = new HashSet<>(Arrays.asList(known));
        for (String[] g : given) {
            if (!allowed.contains(g[0])) {
                throw new UsageException("unknown flag " + g[0] + " for " + command);
            }
        }
    }

    List<String> all(String flag) {
        List<String> values = new ArrayList<>();
        for (String[] g : given) {
            if (g[0].equals(flag) && g[1] != null) {
                values.add(g[1]);
            }
        }
        return values;
    }

    String one(String flag, String fallback) {
        List<String> values = all(flag);
        if (values.size() > 1) {
            throw new UsageException(flag + " given more than once");
        }
        return values.isEmpty() ? fallback : values.get(0);
    }

    String required(String flag) {
        String value = one(flag, null);
        if (value == null) {
            throw new UsageException(flag + " is required");
        }
        return value;
    }

    long number(String flag, long fallback) {
        String value = one(flag, null);
        if (value == null) {
            return fallback;
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " " + value + ": not a number");
        }
    }

    long requiredNumber(String flag) {
        required(flag);
        return number(flag, 0);
    }

    boolean has(String flag) {
        for (String[] g : given) {
            if (g[0].equals(flag)) {
                return true;
            }
        }
        return false;
    }
}
