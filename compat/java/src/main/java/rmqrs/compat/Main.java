package rmqrs.compat;

/**
 * Drives the official Java RocketMQ remoting client (rocketmq-client and rocketmq-tools),
 * unmodified, for this project's compatibility tests. The same source is built against
 * 4.9.8 and 5.x (see ../../../../pom.xml); the few classes that moved between them are
 * reached through {@link Versioned}.
 *
 * <ul>
 *   <li>{@link Produce}: DefaultMQProducer sync, async, oneway, batch and ordered sends.
 *   <li>{@link Consume}: DefaultMQPushConsumer, concurrent or orderly, clustering or
 *       broadcasting, one or more instances, refusals through %RETRY% into %DLQ%.
 *   <li>{@link Pull}: DefaultLitePullConsumer, subscribe or assign, seek, commit, pause/resume.
 *   <li>{@link Request}: DefaultMQProducer.request answered through MessageUtil.createReplyMessage.
 *   <li>{@link Admin}: DefaultMQAdminExt.
 *   <li>{@link Transaction}: TransactionMQProducer, commits, rollbacks and check-backs.
 *   <li>{@link Timer}: RocketMQ 5 timer messages and recalls.
 *   <li>{@link Notify}: RocketMQ 5's NOTIFICATION and POLLING_INFO (5.x only).
 * </ul>
 */
public final class Main {
    private Main() {}

    public static void main(String[] argv) {
        quietClientLogging();
        int code;
        try {
            code = run(argv);
        } catch (Args.UsageException e) {
            System.err.println("java-driver: " + e.getMessage());
            System.err.println(Args.USAGE);
            code = 2;
        } catch (Admin.Reported r) {
            code = 1;
        } catch (Throwable t) {
            Report.print(Report.failure("run", t));
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        System.err.flush();
        // The clients' netty and scheduler threads are not all daemons: leave without them.
        Runtime.getRuntime().halt(code);
    }

    private static int run(String[] argv) throws Exception {
        Args args = new Args(argv);
        if (!args.command.equals("admin") && !args.words.isEmpty()) {
            throw new Args.UsageException("unexpected argument " + args.words.get(0));
        }
        switch (args.command) {
            case "version":
                Report.print(Clients.started("version"));
                return 0;
            case "produce":
                return Produce.run(args);
            case "consume":
                return Consume.run(args);
            case "pull":
                return Pull.run(args);
            case "request":
                return Request.run(args);
            case "admin":
                return Admin.run(args);
            case "transaction":
                return Transaction.run(args);
            case "timer":
                return Timer.run(args);
            case "notify":
                return Notify.run(args);
            default:
                throw new Args.UsageException("unknown command " + args.command);
        }
    }

    /**
     * Sends the client's logs to stderr (or nowhere), never to stdout or ~/logs. Runs before
     * any client class loads, since the clients read these properties once.
     * 4.9.8: rocketmq.client.logUseSlf4j=true routes ClientLogger through SLF4J to logback,
     * configured by logback.xml. 5.x: the client's shaded logback reads rmq.logback-test.xml
     * first. Both read driver.log.level (WARN by default).
     */
    private static void quietClientLogging() {
        String root = System.getProperty("java.io.tmpdir") + "/rmq-java-driver-logs";
        setIfUnset("rocketmq.client.logUseSlf4j", "true");
        setIfUnset("rocketmq.client.logRoot", root);
        setIfUnset("rocketmq.client.logLevel", "WARN");
        setIfUnset("rocketmq.log.root", root);
        setIfUnset("rocketmq.log.level", "warn");
        setIfUnset("driver.log.level", "WARN");
    }

    private static void setIfUnset(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }
}
