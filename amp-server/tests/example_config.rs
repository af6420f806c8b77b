//! The annotated `amp.example.toml` in the repository root is the configuration reference;
//! it must stay loadable as the schema changes.

use amp_core::{AmpConfig, ModelId, Provider, Tier};

#[test]
fn the_example_config_in_the_repository_loads() {
    let text = include_str!("../../amp.example.toml");
    let env = |name: &str| Some(format!("value-of-{name}"));
    let config =
        AmpConfig::from_toml_str(text, &env, std::iter::empty()).expect("amp.example.toml must load");
    let gpt = &config.models.models[&ModelId::new("gpt-4o")];
    assert_eq!(gpt.provider, Provider::OpenAi);
    assert_eq!(gpt.deployments.len(), 2);
    assert_eq!(gpt.deployments[0].api_key.as_ref().unwrap().expose(), "value-of-OPENAI_API_KEY");
    let claude = &config.models.models[&ModelId::new("claude-3")];
    assert_eq!((claude.context_window, claude.tier), (100_000, Tier::Balanced));
    assert_eq!(config.models.default_model, Some(ModelId::new("gpt-4o")));
}

#[test]
fn the_example_config_names_every_variable_it_needs() {
    let text = include_str!("../../amp.example.toml");
    let err = AmpConfig::from_toml_str(text, &|_| None, std::iter::empty()).unwrap_err().to_string();
    assert!(err.contains("is not set"), "{err}");
}

#[test]
fn the_commented_single_sign_on_example_loads_when_uncommented() {
    let text = include_str!("../../amp.example.toml");
    let mut in_block = false;
    let uncommented: Vec<&str> = text
        .lines()
        .map(|line| {
            if line.starts_with("# [auth.oidc]") {
                in_block = true;
            } else if line.trim().is_empty() {
                in_block = false;
            }
            if in_block { line.trim_start_matches("# ") } else { line }
        })
        .collect();
    let text = uncommented.join("\n");
    let env = |name: &str| Some(format!("value-of-{name}"));
    let config =
        AmpConfig::from_toml_str(&text, &env, std::iter::empty()).expect("the SSO example must load");
    let oidc = config.auth.oidc.expect("the example configures SSO once uncommented");
    assert_eq!(oidc.jwks_url, "https://sso.example.com/pf/JWKS");
    assert_eq!((oidc.email_claim.as_str(), oidc.jwks_refresh_min_secs), ("email", 30));
}
