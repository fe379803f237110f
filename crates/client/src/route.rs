//! What a topic route means to a client: the queues a producer may write and a consumer
//! may read, derived from name-server `TopicRouteData` the way RocketMQ clients do.

use remoting::body::route::MASTER_ID;
use remoting::body::{perm, MessageQueue, TopicRouteData};

/// A topic's route with the queue lists derived from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRoute {
    pub topic: String,
    pub data: TopicRouteData,
    /// Writable queues, in a stable order (by broker name, then queue id).
    pub publish_queues: Vec<MessageQueue>,
    /// Readable queues, sorted.
    pub subscribe_queues: Vec<MessageQueue>,
    /// The route came from `orderTopicConf` (a topic configured for global order).
    pub ordered: bool,
}

impl TopicRoute {
    pub fn new(topic: &str, data: TopicRouteData) -> Self {
        let (publish_queues, ordered) = publish_queues(topic, &data);
        let subscribe_queues = subscribe_queues(topic, &data);
        TopicRoute {
            topic: topic.to_owned(),
            data,
            publish_queues,
            subscribe_queues,
            ordered,
        }
    }

    /// A route built from the auto-create template topic (`TBW102`): each writable broker
    /// offers `min(queue_nums, template queues)` queues under `topic`'s name (Java does the
    /// same when the name server does not know the topic yet).
    pub fn from_template(topic: &str, mut template: TopicRouteData, queue_nums: i32) -> Self {
        for queue_data in &mut template.queue_datas {
            let nums = queue_nums.min(queue_data.read_queue_nums).max(0);
            queue_data.read_queue_nums = nums;
            queue_data.write_queue_nums = nums;
        }
        TopicRoute::new(topic, template)
    }

    /// The master address of `broker_name` in this route.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.data
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.master_addr())
    }
}

/// Writable queues. With `orderTopicConf` (`broker-a:4;broker-b:4`) the queues come from
/// it; otherwise from every writable QueueData whose broker has a master, as Java's
/// producer builds them (a broker group without a master cannot take writes).
fn publish_queues(topic: &str, data: &TopicRouteData) -> (Vec<MessageQueue>, bool) {
    if let Some(conf) = data.order_topic_conf.as_deref().filter(|c| !c.is_empty()) {
        let mut queues = Vec::new();
        for entry in conf.split(';') {
            let Some((broker, nums)) = entry.split_once(':') else {
                continue;
            };
            let nums: i32 = nums.trim().parse().unwrap_or(0);
            queues.extend(
                (0..nums.clamp(0, MAX_QUEUES_PER_BROKER))
                    .map(|id| MessageQueue::new(topic, broker.trim(), id)),
            );
        }
        return (queues, true);
    }
    let mut queue_datas: Vec<_> = data.queue_datas.iter().collect();
    queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    let mut queues = Vec::new();
    for queue_data in queue_datas {
        if !perm::is_writeable(queue_data.perm) {
            continue;
        }
        let has_master = data.broker_datas.iter().any(|b| {
            b.broker_name == queue_data.broker_name && b.broker_addrs.contains_key(&MASTER_ID)
        });
        if !has_master {
            continue;
        }
        let nums = queue_data.write_queue_nums.clamp(0, MAX_QUEUES_PER_BROKER);
        queues.extend((0..nums).map(|id| MessageQueue::new(topic, &queue_data.broker_name, id)));
    }
    (queues, false)
}

/// A guard against absurd queue counts in a route: far above any real topic (Java's
/// default is 8 or 16), and small enough that a list of queues stays cheap.
const MAX_QUEUES_PER_BROKER: i32 = 1024;

/// Readable queues, sorted the way rebalancing needs them.
fn subscribe_queues(topic: &str, data: &TopicRouteData) -> Vec<MessageQueue> {
    let mut queues: Vec<MessageQueue> = data
        .queue_datas
        .iter()
        .filter(|q| perm::is_readable(q.perm))
        .flat_map(|q| {
            (0..q.read_queue_nums.clamp(0, MAX_QUEUES_PER_BROKER))
                .map(move |id| MessageQueue::new(topic, &q.broker_name, id))
        })
        .collect();
    queues.sort();
    queues.dedup();
    queues
}

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::body::{BrokerData, QueueData};

    fn route_data() -> TopicRouteData {
        let broker = |name: &str, with_master: bool| BrokerData {
            cluster: "C".into(),
            broker_name: name.into(),
            broker_addrs: if with_master {
                [(0, format!("{name}:0")), (1, format!("{name}:1"))]
                    .into_iter()
                    .collect()
            } else {
                [(1, format!("{name}:1"))].into_iter().collect()
            },
            enable_acting_master: false,
            zone_name: None,
        };
        let queue = |name: &str, read, write, perm| QueueData {
            broker_name: name.into(),
            read_queue_nums: read,
            write_queue_nums: write,
            perm,
            topic_sys_flag: 0,
        };
        TopicRouteData {
            queue_datas: vec![
                queue("b", 2, 2, 6),
                queue("a", 3, 2, 6),
                queue("ro", 1, 1, 4),
                queue("nomaster", 1, 1, 6),
            ],
            broker_datas: vec![
                broker("a", true),
                broker("b", true),
                broker("ro", true),
                broker("nomaster", false),
            ],
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn publish_queues_need_write_perm_and_a_master() {
        let route = TopicRoute::new("T", route_data());
        let names: Vec<_> = route
            .publish_queues
            .iter()
            .map(|q| format!("{}:{}", q.broker_name, q.queue_id))
            .collect();
        assert_eq!(names, ["a:0", "a:1", "b:0", "b:1"]);
        assert!(!route.ordered);
        assert_eq!(route.master_addr("a"), Some("a:0"));
        assert_eq!(route.master_addr("nomaster"), None);
    }

    #[test]
    fn subscribe_queues_use_read_counts_and_read_perm() {
        let route = TopicRoute::new("T", route_data());
        assert_eq!(route.subscribe_queues.len(), 3 + 2 + 1 + 1);
        assert!(route.subscribe_queues.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn order_conf_decides_publish_queues() {
        let mut data = route_data();
        data.order_topic_conf = Some("b:2;a:1;junk".into());
        let route = TopicRoute::new("T", data);
        assert!(route.ordered);
        assert_eq!(
            route.publish_queues,
            [
                MessageQueue::new("T", "b", 0),
                MessageQueue::new("T", "b", 1),
                MessageQueue::new("T", "a", 0)
            ]
        );
    }

    #[test]
    fn template_routes_cap_queue_counts() {
        let route = TopicRoute::from_template("New", route_data(), 1);
        assert!(route
            .publish_queues
            .iter()
            .all(|q| q.topic == "New" && q.queue_id == 0));
        assert_eq!(route.publish_queues.len(), 2);
    }
}
