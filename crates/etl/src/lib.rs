//! The pipeline's runtime code: the Spark job for base b (a PySpark script shipped as an
//! artifact), and the warehouse contract it writes by.

pub use stack_model::warehouse;
