pub mod error;
pub mod lex;
pub mod values;
