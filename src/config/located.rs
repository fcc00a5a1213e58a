//! `Located<T>`: a TOML table with where it starts, like `toml::Spanned`, that also accepts
//! a table written with dotted keys (`proxy_protocol.listeners = […]` under `[server]`, or
//! `imap.server = "…"` under `[[account]]`). toml gives such a table no span, and
//! `Spanned` then refuses valid TOML with "invalid type: string …, expected a borrowed
//! string"; here it gets an empty span at the start of the file instead (its values keep
//! their own spans, so most errors still point at the line).

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::marker::PhantomData;
use std::ops::Range;

/// The names toml's deserializer answers with a span (the `serde_spanned` protocol).
const NAME: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];

/// A deserialized table and the byte range it was written in (empty for a dotted-key table).
#[derive(Debug)]
pub struct Located<T> {
    span: Range<usize>,
    value: T,
}

impl<T> Located<T> {
    /// Where the table was written (bytes of the file); `0..0` when toml did not say.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The table.
    pub fn get_ref(&self) -> &T {
        &self.value
    }

    /// The table, without its place.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(NAME, FIELDS, LocatedVisitor(PhantomData))
    }
}

struct LocatedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
        let first: Option<String> = map.next_key()?;
        if first.as_deref() != Some(START) {
            // A table without a span: `first` is its first key.
            let rest = Prepended { first, map };
            let value = T::deserialize(de::value::MapAccessDeserializer::new(rest))?;
            return Ok(Located { span: 0..0, value });
        }
        let start: usize = map.next_value()?;
        let end = match map.next_key::<String>()?.as_deref() {
            Some(END) => map.next_value::<usize>()?,
            _ => return Err(de::Error::custom("a span without its end")),
        };
        let value = match map.next_key::<String>()?.as_deref() {
            Some(VALUE) => map.next_value::<T>()?,
            _ => return Err(de::Error::custom("a span without its value")),
        };
        Ok(Located {
            span: start..end,
            value,
        })
    }
}

/// A map whose first key was already read.
struct Prepended<A> {
    first: Option<String>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Prepended<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(key) => seed.deserialize(key.into_deserializer()).map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}
