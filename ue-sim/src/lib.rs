//! A UE simulator: IMS-AKA, sec-agree, registration.
