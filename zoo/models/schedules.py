"""Training-step schedules. Each is a function of the model's saved `global_step`."""
import tensorflow as tf


def linear_capacity(step, c_max, num_steps, c_min=0.0):
    """C(t): linear from c_min at t = 0 to c_max at t = num_steps, constant afterwards
    (Burgess et al. 2018; JointVAE uses the same ramp with c_min)."""
    t = tf.cast(step, tf.float32)
    fraction = tf.minimum(t / float(num_steps), 1.0)
    return c_min + (c_max - c_min) * fraction
