//! A pager's settings changed by field name (what a binding's `configure` does):
//! atomic, and a change of backend alone does not revalidate the config.

mod common;

use coldpage::{ConfigValue, Selector, CONFIG_FIELDS};
use common::pager;

fn patch(fields: &[(&str, ConfigValue)]) -> Vec<(String, ConfigValue)> {
    fields.iter().map(|(name, value)| (name.to_string(), value.clone())).collect()
}

#[test]
fn a_patch_applies_whole_or_not_at_all() {
    let (pager, _dir) = pager();
    let (config, selector) = (pager.config(), pager.backend());
    let bad = patch(&[
        ("backend", ConfigValue::Text("file".into())),
        ("verify", ConfigValue::Bool(false)),
        ("compress", ConfigValue::Text("zstd".into())),
    ]);
    assert_eq!(pager.set_fields(&bad).unwrap_err().code(), "ERR_INVALID_ARG_VALUE");
    assert_eq!((pager.config(), pager.backend()), (config.clone(), selector));

    let refused =
        patch(&[("backend", ConfigValue::Text("file".into())), ("maxScratchBytes", ConfigValue::Number(0.0))]);
    assert_eq!(pager.set_fields(&refused).unwrap_err().code(), "ERR_COLDPAGE_CONFIG");
    assert_eq!((pager.config(), pager.backend()), (config, selector));

    let good = patch(&[
        ("backend", ConfigValue::Text("file".into())),
        ("maxScratchBytes", ConfigValue::Number(1e6)),
        ("residentBytes", ConfigValue::Number(5.0)),
    ]);
    pager.set_fields(&good).unwrap();
    assert_eq!(pager.backend(), Selector::File);
    assert_eq!((pager.config().max_scratch_bytes, pager.config().resident_bytes), (Some(1_000_000), Some(5)));
    pager.set_fields(&patch(&[("maxScratchBytes", ConfigValue::Null)])).unwrap();
    assert_eq!((pager.config().max_scratch_bytes, pager.config().resident_bytes), (None, Some(5)));
}

#[test]
fn fields_read_back_every_field_in_table_order() {
    let (pager, _dir) = pager();
    pager.set_fields(&patch(&[("encrypt", ConfigValue::Bool(true))])).unwrap();
    let fields = pager.fields();
    let names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, CONFIG_FIELDS.iter().map(|f| f.name).collect::<Vec<_>>());
    assert!(fields.contains(&("encrypt", ConfigValue::Bool(true))));
    assert!(fields.contains(&("maxScratchBytes", ConfigValue::Null)));
}

#[test]
fn a_change_of_backend_alone_does_not_revalidate_the_config() {
    let (pager, dir) = pager();
    drop(dir); // the scratch dir is gone: revalidating the config would fail
    pager.set_fields(&patch(&[("backend", ConfigValue::Text("swap".into()))])).unwrap();
    assert_eq!(pager.backend(), Selector::Swap);
    let err = pager.set_fields(&patch(&[("verify", ConfigValue::Bool(false))])).unwrap_err();
    assert_eq!(err.code(), "ERR_COLDPAGE_CONFIG");
}
