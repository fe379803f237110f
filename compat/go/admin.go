package main

import (
	"context"
	"sort"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// runAdmin: the client's admin API. The client does not report the broker's response codes
// for create and delete, so each action reads its outcome back:
//
//	topic-list                                   FetchAllTopicList -> "topic_list"
//	create-topic -t T -b ADDR [--queues N]       CreateTopic, then FetchPublishMessageQueues
//	                                             -> "create_topic" with the queues seen
//	delete-topic -t T [-c CLUSTER] [-b ADDR]     DeleteTopic, then FetchAllTopicList
//	                                             -> "delete_topic" with still_listed
func runAdmin(a *args) (int, error) {
	if len(a.words) != 1 {
		return 2, usagef("admin needs one ACTION")
	}
	action := a.words[0]
	if err := a.only("-n", "-t", "-b", "-c", "--queues"); err != nil {
		return 2, err
	}
	ns, err := a.required("-n")
	if err != nil {
		return 2, err
	}
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver(strings.Split(ns, ";"))))
	if err != nil {
		return 1, err
	}
	defer adm.Close()
	emit(startedLine("admin").put("action", action))
	ctx := context.Background()
	listTopics := func() ([]string, error) {
		list, err := adm.FetchAllTopicList(ctx)
		if err != nil {
			return nil, err
		}
		topics := append([]string{}, list.TopicList...)
		sort.Strings(topics)
		return topics, nil
	}
	switch action {
	case "topic-list":
		topics, err := listTopics()
		if err != nil {
			emit(failure("FetchAllTopicList", err))
			return 1, nil
		}
		emit(newLine("topic_list").put("topics", topics))
		return 0, nil
	case "create-topic":
		topic, err := a.required("-t")
		if err != nil {
			return 2, err
		}
		broker, err := a.required("-b")
		if err != nil {
			return 2, err
		}
		queues, err := a.number("--queues", 8)
		if err != nil {
			return 2, err
		}
		if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(broker),
			admin.WithReadQueueNums(int(queues)), admin.WithWriteQueueNums(int(queues))); err != nil {
			emit(failure("CreateTopic", err))
			return 1, nil
		}
		mqs, err := adm.FetchPublishMessageQueues(ctx, topic)
		if err != nil {
			emit(failure("FetchPublishMessageQueues", err))
			return 1, nil
		}
		var names []string
		for _, mq := range mqs {
			names = append(names, mq.BrokerName+":"+itoa(mq.QueueId))
		}
		sort.Strings(names)
		emit(newLine("create_topic").put("topic", topic).put("addr", broker).put("queues", names))
		return 0, nil
	case "delete-topic":
		topic, err := a.required("-t")
		if err != nil {
			return 2, err
		}
		opts := []admin.OptionDelete{admin.WithTopicDelete(topic)}
		if b, _ := a.one("-b", ""); b != "" {
			opts = append(opts, admin.WithBrokerAddrDelete(b))
		}
		if c, _ := a.one("-c", ""); c != "" {
			opts = append(opts, admin.WithClusterName(c))
		}
		if err := adm.DeleteTopic(ctx, opts...); err != nil {
			emit(failure("DeleteTopic", err))
			return 1, nil
		}
		topics, err := listTopics()
		if err != nil {
			emit(failure("FetchAllTopicList", err))
			return 1, nil
		}
		listed := false
		for _, t := range topics {
			listed = listed || t == topic
		}
		emit(newLine("delete_topic").put("topic", topic).put("still_listed", listed))
		return 0, nil
	default:
		return 2, usagef("unknown admin action %s", action)
	}
}
