pub mod addr;
pub mod error;
pub mod keywords;
pub mod lex;
pub mod model;
pub mod values;
