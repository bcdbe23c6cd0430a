"""librdkafka transactions through confluent-kafka-python (TestTransactionsLibrdkafka).

Usage: txn_librdkafka.py BOOTSTRAP TOPIC
Commits one transaction (values c0..c4), aborts another (a0..a4), then reads
the topic from the start with a read_committed and a read_uncommitted
consumer and prints one line per consumer: "<isolation> <values...>".
"""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition

bootstrap, topic = sys.argv[1], sys.argv[2]

p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "rdkafka-txn",
              "transaction.timeout.ms": 10000})
p.init_transactions(30)
for commit, prefix in ((True, "c"), (False, "a")):
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, value="%s%d" % (prefix, i), partition=0)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
# A last committed record after the aborted ones.
p.begin_transaction()
p.produce(topic, value="c5", partition=0)
p.commit_transaction(30)


def read(isolation, want):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rdkafka-" + isolation,
                  "isolation.level": isolation, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(100):
        m = c.poll(0.2)
        if m is None:
            if len(got) >= want:
                break
            continue
        if m.error():
            continue
        got.append(m.value().decode())
    c.close()
    print(isolation, " ".join(got), flush=True)


read("read_committed", 6)
read("read_uncommitted", 11)
