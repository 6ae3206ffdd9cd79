//! Cx (TS 29.228/29.229) client over ims-diameter, and the Cx dictionary.
