//! Triggers: the ETL and EMR topics (encrypted), each subscribed by its function.

use super::functions::{BaseB, Functions};
use super::Pipeline;
use crate::resource::lambda::{Function, FunctionAttr, Permission};
use crate::resource::sns::{Protocol, Subscription, Topic};
use crate::stage::TopicRole;
use crate::template::Handle;

pub(super) struct Topics {
    pub etl: Handle<Topic>,
    pub emr: Handle<Topic>,
}

pub(super) fn topics(p: &mut Pipeline) -> Topics {
    Topics {
        etl: topic(p, "EtlTriggerTopic", TopicRole::EtlTrigger),
        emr: topic(p, "EmrTriggerTopic", TopicRole::EmrTrigger),
    }
}

/// A message on the ETL topic runs the ETL; one on the EMR topic, base b's function: the
/// site-events engine, or the EMR starter (the stage's `base_b_engine`).
pub(super) fn subscribe(p: &mut Pipeline, topics: &Topics, functions: &Functions) {
    subscription(p, "Etl", &topics.etl, &functions.etl);
    match &functions.base_b {
        BaseB::SiteEvents(f) => subscription(p, "SiteEvents", &topics.emr, f),
        BaseB::EmrStarter(f) => subscription(p, "EmrStarter", &topics.emr, f),
    }
}

fn topic(p: &mut Pipeline, id: &str, role: TopicRole) -> Handle<Topic> {
    let tags = p.tags();
    p.t.add(
        id,
        Topic {
            topic_name: Some(p.c.stage.topic_name(role).into()),
            display_name: None,
            kms_master_key_id: Some(p.key.clone().unwrap_or_else(|| "alias/aws/sns".into())),
            tags,
        },
    )
}

fn subscription(p: &mut Pipeline, id: &str, topic: &Handle<Topic>, function: &Handle<Function>) {
    p.t.add(
        &format!("{id}SnsPermission"),
        Permission {
            action: "lambda:InvokeFunction".into(),
            function_name: function.get_att(FunctionAttr::Arn),
            principal: "sns.amazonaws.com".into(),
            source_arn: Some(topic.r#ref()),
            source_account: None,
        },
    );
    p.t.add(
        &format!("{id}Subscription"),
        Subscription {
            topic_arn: topic.r#ref(),
            protocol: Protocol::Lambda,
            endpoint: function.get_att(FunctionAttr::Arn),
        },
    );
}
