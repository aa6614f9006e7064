//! The RLS domains in force, by name, built from several config files.
//!
//! Each file defines one domain; two files defining the same domain is an error (the
//! original's default, without its merge option). File names are labels for errors only:
//! reading the files is the caller's business.

use crate::rls::config::RlsConfig;
use crate::rls::domain::RlsDomain;
use crate::rls::error::RlsConfigError;
use crate::rls::matcher::MatchedRule;
use crate::rls::unit::RlsUnit;
use std::collections::HashMap;

/// Domains by name, each with the file it came from.
#[derive(Debug, Clone, Default)]
pub struct RlsRegistry {
    domains: HashMap<String, (String, RlsDomain)>,
}

impl RlsRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates `(file name, config)` pairs into a registry; errors name their file.
    pub fn from_configs<I, S>(files: I) -> Result<Self, RlsConfigError>
    where
        I: IntoIterator<Item = (S, RlsConfig)>,
        S: Into<String>,
    {
        let mut registry = Self::new();
        for (file, cfg) in files {
            let file = file.into();
            let domain = RlsDomain::from_config(cfg).map_err(|e| e.in_file(file.clone()))?;
            registry.insert(file, domain)?;
        }
        Ok(registry)
    }

    /// Adds a domain read from `file`; refused if another file already defined it.
    pub fn insert(
        &mut self,
        file: impl Into<String>,
        domain: RlsDomain,
    ) -> Result<(), RlsConfigError> {
        let file = file.into();
        if let Some((first, _)) = self.domains.get(domain.name()) {
            return Err(RlsConfigError::DuplicateDomain {
                domain: domain.name().to_owned(),
                first: first.clone(),
                second: file,
            });
        }
        self.domains
            .insert(domain.name().to_owned(), (file, domain));
        Ok(())
    }

    /// The domain named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&RlsDomain> {
        self.domains.get(name).map(|(_, d)| d)
    }

    /// The names of all domains, in no particular order.
    pub fn domain_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.domains.keys().map(String::as_str)
    }

    /// The number of domains.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether there are no domains.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The rule for `entries` in `domain`; `None` for an unknown domain too, which the
    /// original answers with "no limit" (use [`RlsRegistry::get`] to tell the cases apart).
    pub fn lookup(&self, domain: &str, entries: &[(&str, &str)]) -> Option<MatchedRule> {
        self.get(domain)?.lookup(entries)
    }

    /// The rule for a request descriptor carrying its own limit; `Ok(None)` for an unknown
    /// domain, where the original ignores the override too.
    pub fn lookup_override(
        &self,
        domain: &str,
        entries: &[(&str, &str)],
        requests_per_unit: u32,
        unit: RlsUnit,
    ) -> Result<Option<MatchedRule>, RlsConfigError> {
        self.get(domain)
            .map(|d| d.lookup_override(entries, requests_per_unit, unit))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::testutil::{parse, STOREFRONT};

    fn registry() -> RlsRegistry {
        RlsRegistry::from_configs([
            ("storefront.yaml", parse(STOREFRONT)),
            ("other.yaml", parse("domain: other\n")),
        ])
        .unwrap()
    }

    /// Several files give several domains, each looked up by name.
    #[test]
    fn domains_by_name() {
        let r = registry();
        assert_eq!(r.len(), 2);
        let m = r
            .lookup("storefront", &[("remote_address", "1.2.3.4")])
            .unwrap();
        assert_eq!(m.domain, "storefront");
        assert!(r
            .lookup("other", &[("remote_address", "1.2.3.4")])
            .is_none());
    }

    /// An unknown domain matches nothing, with or without an override.
    #[test]
    fn unknown_domain() {
        let r = registry();
        assert!(r.get("nope").is_none());
        assert!(r.lookup("nope", &[("remote_address", "1.2.3.4")]).is_none());
        let o = r.lookup_override("nope", &[("k", "v")], 5, RlsUnit::Second);
        assert_eq!(o, Ok(None));
        let o = r.lookup_override("other", &[("k", "v")], 5, RlsUnit::Second);
        assert!(o.unwrap().is_some());
    }

    /// Two files with one domain are refused, naming both files.
    #[test]
    fn duplicate_domain() {
        let err = RlsRegistry::from_configs([
            ("a.yaml", parse("domain: shop\n")),
            ("b.yaml", parse("domain: shop\n")),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "domain `shop` is defined in both `a.yaml` and `b.yaml`"
        );
    }

    /// A validation error inside one of several files names that file.
    #[test]
    fn errors_name_their_file() {
        let err = RlsRegistry::from_configs([("bad.yaml", parse("domain: ''\n"))]).unwrap_err();
        assert_eq!(err.to_string(), "bad.yaml: domain: must not be empty");
    }
}
