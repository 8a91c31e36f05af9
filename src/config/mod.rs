pub mod error;
pub mod lex;
pub mod values;
pub mod model;
pub mod addr;
