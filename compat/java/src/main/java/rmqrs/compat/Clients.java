package rmqrs.compat;

import java.lang.management.ManagementFactory;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.ClientConfig;
import org.apache.rocketmq.common.MQVersion;
import org.apache.rocketmq.remoting.RPCHook;

/** Settings every client of a run shares. */
final class Clients {
    private static final AtomicInteger INSTANCES = new AtomicInteger();
    private static final String PID = ManagementFactory.getRuntimeMXBean().getName().split("@")[0];

    private Clients() {}

    /**
     * Points {@code client} at the name servers with a unique instance name (so clients of
     * one run never share a client instance, and runs never share ids).
     */
    static <C extends ClientConfig> C configure(C client, String namesrv, boolean vip) {
        client.setNamesrvAddr(namesrv);
        client.setInstanceName("drv-" + PID + "-" + INSTANCES.getAndIncrement());
        client.setVipChannelEnabled(vip);
        return client;
    }

    /**
     * ACL 1.0: the client's own signing hook when ROCKETMQ_ACCESS_KEY and ROCKETMQ_SECRET_KEY
     * are set (the same class in 4.9.8's rocketmq-acl and 5.x's rocketmq-client), else none.
     */
    static RPCHook rpcHook() {
        String accessKey = System.getenv("ROCKETMQ_ACCESS_KEY");
        String secretKey = System.getenv("ROCKETMQ_SECRET_KEY");
        if (accessKey == null || secretKey == null) {
            return null;
        }
        return new AclClientRPCHook(new SessionCredentials(accessKey, secretKey));
    }

    /** The line each command prints first: which client this is. */
    static Json started(String command) {
        return Json.op("started").put("command", command)
            .put("client_version", MQVersion.getVersionDesc(MQVersion.CURRENT_VERSION))
            .put("client_version_code", MQVersion.CURRENT_VERSION)
            .put("java", System.getProperty("java.version"));
    }
}
