//! The admin side of pylon (the stats socket, `show stat`, metrics), arriving with issue 7.
//! So far: the CSV format of `show stat`.

pub mod csv;
