//! Closed vocabularies that calperm and its scripts share (outcomes, kinds): each is defined
//! once, here in Rust, as an enum whose `as_str` names are what the records carry, what serde
//! reads and writes, and what the templates render from `ALL`.

/// Declares such an enum: its variants with their names, `ALL`, `NAMES`, `as_str` and
/// `from_name`, and serde by name. With `pub enum Name or Unknown`, a name outside the list parses to
/// `Unknown(name)` instead of failing, so a script (or an overridden template) that reports a
/// new kind never makes its record unreadable.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Every value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::from_name(&name)
                    .ok_or_else(|| serde::de::Error::unknown_variant(&name, Self::NAMES))
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident or $unknown:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A name that is not (yet) one of these, kept as reported.
            $unknown(String),
        }

        impl $name {
            /// Every known value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Every known value's name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::$unknown(name) => name,
                }
            }

            /// The name of a known value.
            pub fn known_name(&self) -> Option<&'static str> {
                match self {
                    $($name::$variant => Some($text),)+
                    $name::$unknown(_) => None,
                }
            }

            /// The known value of that name, else `Unknown(name)`.
            pub fn from_name(name: &str) -> $name {
                Self::ALL
                    .iter()
                    .find(|v| v.as_str() == name)
                    .cloned()
                    .unwrap_or_else(|| $name::$unknown(name.to_string()))
            }

            /// Whether this is one of the listed values.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::$unknown(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok($name::from_name(&name))
            }
        }
    };
}

pub(crate) use names;
