package rmqrs.compat;

import java.lang.reflect.Method;
import java.util.Map;

/**
 * The classes the driver needs that moved between client versions (4.9.8 keeps protocol
 * classes in org.apache.rocketmq.common.protocol, 5.x in org.apache.rocketmq.remoting.protocol),
 * reached by reflection so one source builds against both.
 */
final class Versioned {
    private Versioned() {}

    /** Calls {@code setMessageModel(MessageModel.valueOf(model))} on a consumer. */
    static void setMessageModel(Object consumer, String model) throws Exception {
        for (Method m : consumer.getClass().getMethods()) {
            if (m.getName().equals("setMessageModel") && m.getParameterCount() == 1) {
                Class<?> type = m.getParameterTypes()[0];
                m.invoke(consumer, enumValue(type, model));
                return;
            }
        }
        throw new IllegalStateException("no setMessageModel on " + consumer.getClass());
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object enumValue(Class<?> type, String name) {
        return Enum.valueOf((Class) type, name);
    }

    /**
     * 5.x only: {@code DefaultMQAdminExt.setMessageRequestMode} (what {@code mqadmin
     * setConsumeMode} sends) with the mode given by name.
     */
    static void setMessageRequestMode(Object admin, String addr, String topic, String group,
            String mode, int popShareQueueNum) throws Exception {
        for (Method m : admin.getClass().getMethods()) {
            if (m.getName().equals("setMessageRequestMode") && m.getParameterCount() == 6) {
                Object value = enumValue(m.getParameterTypes()[3], mode);
                m.invoke(admin, addr, topic, group, value, popShareQueueNum, 5000L);
                return;
            }
        }
        throw new IllegalStateException("this client has no setMessageRequestMode");
    }

    /** A SubscriptionGroupConfig with {@code settings} applied through its setters. */
    static Object subscriptionGroupConfig(Map<String, Object> settings) throws Exception {
        Class<?> type = firstClass(
            "org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig",
            "org.apache.rocketmq.common.subscription.SubscriptionGroupConfig");
        Object config = type.getConstructor().newInstance();
        for (Map.Entry<String, Object> e : settings.entrySet()) {
            String setter = "set" + Character.toUpperCase(e.getKey().charAt(0)) + e.getKey().substring(1);
            Method found = null;
            for (Method m : type.getMethods()) {
                if (m.getName().equals(setter) && m.getParameterCount() == 1) {
                    found = m;
                }
            }
            if (found == null) {
                throw new IllegalArgumentException("SubscriptionGroupConfig has no " + setter);
            }
            found.invoke(config, convert(e.getValue(), found.getParameterTypes()[0]));
        }
        return config;
    }

    /** Calls a method that takes a version-specific type, found by name and arity. */
    static Object call(Object target, String name, Object... args) throws Exception {
        for (Method m : target.getClass().getMethods()) {
            if (m.getName().equals(name) && m.getParameterCount() == args.length) {
                try {
                    return m.invoke(target, args);
                } catch (java.lang.reflect.InvocationTargetException e) {
                    if (e.getCause() instanceof Exception) {
                        throw (Exception) e.getCause();
                    }
                    throw e;
                } catch (IllegalArgumentException wrongOverload) {
                    // another overload with the same arity: keep looking
                }
            }
        }
        throw new NoSuchMethodException(target.getClass().getName() + "." + name);
    }

    private static Object convert(Object value, Class<?> type) {
        String s = String.valueOf(value);
        if (type == int.class || type == Integer.class) {
            return Integer.parseInt(s);
        }
        if (type == long.class || type == Long.class) {
            return Long.parseLong(s);
        }
        if (type == boolean.class || type == Boolean.class) {
            return Boolean.parseBoolean(s);
        }
        return value;
    }

    private static Class<?> firstClass(String... names) throws ClassNotFoundException {
        for (String name : names) {
            try {
                return Class.forName(name);
            } catch (ClassNotFoundException e) {
                // try the next
            }
        }
        throw new ClassNotFoundException(String.join(" or ", names));
    }
}
